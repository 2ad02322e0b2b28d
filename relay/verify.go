package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/types/logger"
)

// Refusal is one client the relay refused.
type Refusal struct {
	Time   time.Time
	Client string // node key, e.g. "nodekey:8c6f…"
	Remote string // address it came from, e.g. "198.51.100.7:41641"
	Reason string // derpserver's words, e.g. "peer nodekey:… not authorized (not found in local tailscaled)"
}

// refusalLogEvery is how often refusals reach the log: the first of a
// quiet period is logged in full, later ones are summarized once per
// period. A refused client retries about once a second, so logging each
// attempt would bury everything else.
const refusalLogEvery = time.Minute

// refusalLog counts refused clients and keeps the log quiet about them.
type refusalLog struct {
	logf logger.Logf
	now  func() time.Time

	mu         sync.Mutex
	total      int64
	last       Refusal
	loggedAt   time.Time // when a refusal was last logged in full
	suppressed int       // refusals since then, not yet summarized
	clients    map[string]bool
	timer      *time.Timer
	closed     bool
}

func newRefusalLog(logf logger.Logf, now func() time.Time) *refusalLog {
	return &refusalLog{logf: logf, now: now}
}

func (r *refusalLog) note(ref Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	r.last = ref
	if r.loggedAt.IsZero() || ref.Time.Sub(r.loggedAt) >= refusalLogEvery && r.suppressed == 0 {
		r.loggedAt = ref.Time
		r.logf("relay: refused client %s from %s: %s (further refusals are counted and summarized every %v)", ref.Client, ref.Remote, ref.Reason, refusalLogEvery)
		return
	}
	r.suppressed++
	if r.clients == nil {
		r.clients = map[string]bool{}
	}
	if len(r.clients) < 1000 {
		r.clients[ref.Client] = true
	}
	if r.timer == nil && !r.closed {
		wait := refusalLogEvery - ref.Time.Sub(r.loggedAt)
		r.timer = time.AfterFunc(max(wait, 0), r.summarize)
	}
}

// summarize logs the refusals suppressed since the last log line.
func (r *refusalLog) summarize() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if r.suppressed == 0 || r.closed {
		return
	}
	r.logf("relay: refused %d more connection attempts from %d clients since %s; latest: %s from %s: %s",
		r.suppressed, len(r.clients), r.loggedAt.Format(time.TimeOnly), r.last.Client, r.last.Remote, r.last.Reason)
	r.loggedAt = r.now()
	r.suppressed = 0
	r.clients = nil
}

func (r *refusalLog) stats() (total int64, last Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total, r.last
}

func (r *refusalLog) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// derpLogf is the logf every derpserver gets. It takes derpserver's
// per-attempt rejection lines ("derp: <addr>: client <key> rejected:
// <why>", logged by (*derpserver.Server).Accept with this exact format)
// out of the log and counts them instead, and rate-limits the fail-open
// notice. Everything else passes through.
func (s *Server) derpLogf(format string, args ...any) {
	if format == "derp: %s: %v" && len(args) == 2 {
		remote, _ := args[0].(string)
		if err, ok := args[1].(error); ok {
			if client, reason, ok := parseRejection(err.Error()); ok {
				s.refusals.note(Refusal{Time: s.cfg.Now(), Client: client, Remote: remote, Reason: reason})
				return
			}
		}
	}
	if format == "admission controller unreachable; allowing client %v" {
		s.failOpenLogf(format, args...)
		return
	}
	s.logf(format, args...)
}

// parseRejection recognizes derpserver's "client <key> rejected: <why>".
func parseRejection(msg string) (client, reason string, ok bool) {
	rest, ok := strings.CutPrefix(msg, "client ")
	if !ok {
		return "", "", false
	}
	client, reason, ok = strings.Cut(rest, " rejected: ")
	if !ok || strings.Contains(client, " ") {
		return "", "", false
	}
	return client, reason, true
}

// tailscaledWatch polls the box's tailscaled while verify-clients is on,
// so the status can say plainly why clients are refused. derpserver asks
// tailscaled on its own for each client (fail closed); this only
// observes, and needs no action to recover: once tailscaled answers
// again, so do the admission checks.
type tailscaledWatch struct {
	logf     logger.Logf
	interval time.Duration
	timeout  time.Duration

	mu     sync.Mutex
	socket string
	cancel context.CancelFunc
	done   chan struct{}
	state  tailscaledState
}

type tailscaledState struct {
	state string // "Running", "NeedsLogin", …, "unreachable: <why>", or "" before the first poll
	peers int    // peers tailscaled knows: the nodes verify-clients can admit
}

func newTailscaledWatch(logf logger.Logf, interval time.Duration) *tailscaledWatch {
	return &tailscaledWatch{logf: logf, interval: interval, timeout: 3 * time.Second}
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
	lc := &local.Client{Socket: socket, UseSocketOnly: socket != ""}
	go w.run(ctx, lc, w.done)
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
		next.state = "unreachable: " + plainLocalAPIError(err)
	default:
		next.state = st.BackendState
		next.peers = len(st.Peer)
	}
	w.mu.Lock()
	prev := w.state
	if w.cancel != nil {
		w.state = next
	}
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

func (w *tailscaledWatch) get() tailscaledState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// plainLocalAPIError shortens a LocalAPI error to what a user can act on.
func plainLocalAPIError(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no such file or directory"):
		return "tailscaled is not running (its socket does not exist): " + msg
	case strings.Contains(msg, "connection refused"):
		return "tailscaled is not running (connection refused): " + msg
	case errors.Is(err, context.DeadlineExceeded):
		return "tailscaled did not answer in time"
	}
	return msg
}

// verifyProblem says in plain words why clients are refused, or "".
func verifyProblem(v Verify, ts tailscaledState) string {
	if v.normalized().Mode != VerifyTailscaled {
		return ""
	}
	switch {
	case ts.state == "":
		return "" // not polled yet
	case ts.state == "Running":
		return ""
	case strings.HasPrefix(ts.state, "unreachable"):
		return fmt.Sprintf("verify-clients is on but the box's tailscaled is %s; every new client is refused until it is back", ts.state)
	case ts.state == "NeedsLogin", ts.state == "NeedsMachineAuth":
		return fmt.Sprintf("verify-clients is on but the box's tailscaled is not logged in to your tailnet (%s); every new client is refused until it is", ts.state)
	default:
		return fmt.Sprintf("verify-clients is on but the box's tailscaled is %s, not Running; new clients are refused", ts.state)
	}
}
