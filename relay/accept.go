package relay

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// acceptLimiter is a token bucket on accepted connections, for a home
// line that should not spend its CPU on TLS handshakes of a connection
// flood. Like derper's --accept-connection-limit, a connection over the
// limit is accepted and closed at once rather than left in the kernel's
// backlog: the client learns immediately and retries with backoff.
//
// Unlike derper's rateLimitedListener, Accept does not return an error
// for a refused connection: net/http's Serve stops for good on any
// Accept error that is not temporary.
type acceptLimiter struct {
	now func() time.Time

	mu     sync.Mutex
	limit  AcceptLimit
	tokens float64
	last   time.Time

	accepted, rejected atomic.Int64
}

func newAcceptLimiter(now func() time.Time) *acceptLimiter {
	return &acceptLimiter{now: now}
}

// set changes the limit; the bucket starts full.
func (a *acceptLimiter) set(l AcceptLimit) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l == a.limit {
		return
	}
	if l.PerSec > 0 && l.Burst < 1 {
		l.Burst = 1
	}
	a.limit = l
	a.tokens = float64(l.Burst)
	a.last = a.now()
}

// allow takes a token if there is one.
func (a *acceptLimiter) allow() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.limit.PerSec <= 0 {
		return true
	}
	now := a.now()
	if el := now.Sub(a.last); el > 0 {
		a.tokens = min(float64(a.limit.Burst), a.tokens+el.Seconds()*a.limit.PerSec)
	}
	a.last = now
	if a.tokens < 1 {
		return false
	}
	a.tokens--
	return true
}

func (a *acceptLimiter) wrap(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, a: a}
}

type limitedListener struct {
	net.Listener
	a *acceptLimiter
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.a.allow() {
			l.a.accepted.Add(1)
			return c, nil
		}
		l.a.rejected.Add(1)
		c.Close()
	}
}
