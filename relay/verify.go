package relay

import (
	"strings"
	"sync"
	"time"

	"tailscale.com/types/logger"
)

// Refusal is one client the relay refused.
type Refusal struct {
	Time   time.Time
	Client string // node key, e.g. "nodekey:8c6f…"
	Remote string // address it came from, e.g. "198.51.100.7"
	Reason string // e.g. "not a node of the box's tailnet (the box's tailscaled does not know it)"
	// NoVerdict says no answer came in time (tailscaled or the verify
	// URL not answering, too many checks waiting): the client was
	// refused because admission fails closed, not because it was judged.
	NoVerdict bool
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
	noVerdict  int64 // of total
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
	if ref.NoVerdict {
		r.noVerdict++
	}
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

func (r *refusalLog) stats() (total, noVerdict int64, last Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total, r.noVerdict, r.last
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

// derpLogf is the logf every derpserver gets. It drops derpserver's
// per-attempt rejection lines ("derp: <addr>: client <key> rejected:
// <why>", logged by (*derpserver.Server).Accept with this exact format):
// every rejection is the admission gate's verdict, which counts it and
// keeps the log quiet about it (see refusalLog). Everything else passes
// through.
func (s *Server) derpLogf(format string, args ...any) {
	if format == "derp: %s: %v" && len(args) == 2 {
		if err, ok := args[1].(error); ok {
			if _, _, ok := parseRejection(err.Error()); ok {
				return
			}
		}
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
