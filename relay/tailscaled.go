package relay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/homederp/homederp/internal/usermsg"
	"tailscale.com/client/local"
	"tailscale.com/types/logger"
)

// tailscaledWatch polls the box's tailscaled while verify-clients is on,
// so the status can say plainly why clients are refused. The admission
// gate asks tailscaled for each client (fail closed) and tells the watch
// what it saw: a check that got no answer in time marks tailscaled as not
// answering at once, and an answer while the watch thinks otherwise makes
// it look again now. Recovery needs no action: once tailscaled answers
// again, so do the admission checks.
type tailscaledWatch struct {
	client   func(socket string) *local.Client
	logf     logger.Logf
	interval time.Duration
	timeout  time.Duration
	kick     chan struct{} // poll now

	mu     sync.Mutex
	socket string
	cancel context.CancelFunc
	done   chan struct{}
	state  tailscaledState
}

type tailscaledState struct {
	state string         // "Running", "NeedsLogin", …, "unreachable: <why>", or "" before the first poll
	why   *usermsg.Error // <why> as a sentence, when unreachable
	peers int            // peers tailscaled knows: the nodes verify-clients can admit
}

// unreachable is the state of a tailscaled the watch cannot ask.
func unreachable(why *usermsg.Error, peers int) tailscaledState {
	return tailscaledState{state: "unreachable: " + why.Error(), why: why, peers: peers}
}

// notAnswering is why a tailscaled that accepts connections on its socket
// but does not answer (hung, or stopped with SIGSTOP) is unreachable.
var notAnswering = usermsg.Errorf("relaystate.ts_no_answer", "tailscaled is not answering", nil)

func newTailscaledWatch(client func(socket string) *local.Client, logf logger.Logf, interval, timeout time.Duration) *tailscaledWatch {
	return &tailscaledWatch{client: client, logf: logf, interval: interval, timeout: timeout, kick: make(chan struct{}, 1)}
}

// watch starts polling the tailscaled at socket ("" = platform default),
// restarting the poller if the socket changed.
func (w *tailscaledWatch) watch(socket string) {
	w.mu.Lock()
	if w.cancel != nil && w.socket == socket {
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	w.stop()

	w.mu.Lock()
	defer w.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	w.socket, w.cancel, w.done = socket, cancel, make(chan struct{})
	w.state = tailscaledState{}
	go w.run(ctx, w.client(socket), w.done)
}

func (w *tailscaledWatch) stop() {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.cancel, w.done = nil, nil
	w.state = tailscaledState{}
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (w *tailscaledWatch) run(ctx context.Context, lc *local.Client, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.poll(ctx, lc)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
	}
}

func (w *tailscaledWatch) poll(ctx context.Context, lc *local.Client) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	var next tailscaledState
	st, err := lc.Status(ctx)
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		return // stopping
	case err != nil:
		next = unreachable(plainLocalAPIError(err), 0)
	default:
		next.state = st.BackendState
		next.peers = len(st.Peer)
	}
	w.set(next)
}

// set records a new state and logs a change.
func (w *tailscaledWatch) set(next tailscaledState) {
	w.mu.Lock()
	prev := w.state
	if w.cancel == nil {
		w.mu.Unlock()
		return // stopped
	}
	w.state = next
	w.mu.Unlock()
	if prev.state != next.state {
		switch {
		case next.state == "Running":
			w.logf("relay: verify-clients: the box's tailscaled is Running with %d peers; admitting its tailnet's nodes", next.peers)
		default:
			w.logf("relay: verify-clients: the box's tailscaled is %s; refusing new clients until it is Running", next.state)
		}
	}
}

// noteNotAnswering is an admission check that got no answer in time.
func (w *tailscaledWatch) noteNotAnswering() {
	w.mu.Lock()
	peers := w.state.peers
	w.mu.Unlock()
	w.set(unreachable(notAnswering, peers))
}

// noteAnswer is an admission check that got an answer: if the watch
// thinks tailscaled is not Running, it looks again now.
func (w *tailscaledWatch) noteAnswer() {
	if w.get().state == "Running" {
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *tailscaledWatch) get() tailscaledState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// plainLocalAPIError shortens a LocalAPI error to what a user can act on.
func plainLocalAPIError(err error) *usermsg.Error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no such file or directory"):
		return usermsg.Wrapf(err, "relaystate.ts_no_socket", "tailscaled is not running (its socket does not exist): {{.Err}}", nil)
	case strings.Contains(msg, "connection refused"):
		return usermsg.Wrapf(err, "relaystate.ts_refused", "tailscaled is not running (connection refused): {{.Err}}", nil)
	case errors.Is(err, context.DeadlineExceeded):
		return notAnswering
	}
	return usermsg.Wrapf(err, "relaystate.ts_error", "tailscaled answered with an error: {{.Err}}", nil)
}

// isVersionSkew recognizes a tailscaled older than the relay's
// tailscale.com (tailscale issue 12617), as derpserver does.
func isVersionSkew(err error) bool {
	return strings.Contains(err.Error(), "invalid 'addr' parameter")
}

// verifyProblem says in plain words why clients are refused, or "" (and
// the zero Msg).
func verifyProblem(v Verify, ts tailscaledState) (string, usermsg.Msg) {
	if v.normalized().Mode != VerifyTailscaled {
		return "", usermsg.Msg{}
	}
	switch {
	case ts.state == "":
		return "", usermsg.Msg{} // not polled yet
	case ts.state == "Running":
		return "", usermsg.Msg{}
	case ts.why != nil:
		return usermsg.Say("relaystate.verify_unreachable", "verify-clients is on but the box's {{.Why}}; every new client is refused until it is back", map[string]any{"Why": ts.why})
	case ts.state == "NeedsLogin", ts.state == "NeedsMachineAuth":
		return usermsg.Say("relaystate.verify_logged_out", "verify-clients is on but the box's tailscaled is not logged in to your tailnet ({{.State}}); every new client is refused until it is", map[string]any{"State": ts.state})
	default:
		return usermsg.Say("relaystate.verify_not_running", "verify-clients is on but the box's tailscaled is {{.State}}, not Running; new clients are refused", map[string]any{"State": ts.state})
	}
}
