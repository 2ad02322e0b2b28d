package ddnstest

import (
	"crypto/rand"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Calls counts a provider fake's requests. Fakes embed it, so that its
// methods are theirs; it is safe for concurrent use.
type Calls struct {
	mu     sync.Mutex
	routes map[string]int
	total  int
	writes int
}

// Count records one request of route, e.g. "CreateRecord" or
// "PATCH /zones/:zone/dns_records/:id".
func (c *Calls) Count(route string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.routes == nil {
		c.routes = map[string]int{}
	}
	c.routes[route]++
	c.total++
}

// CountWrite records one successful change of a record.
func (c *Calls) CountWrite() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
}

// Requests returns the number of API requests served, or only those of
// the given routes.
func (c *Calls) Requests(route ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(route) == 0 {
		return c.total
	}
	n := 0
	for _, r := range route {
		n += c.routes[r]
	}
	return n
}

// RequestsByRoute returns a copy of the per-route counts.
func (c *Calls) RequestsByRoute() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.routes)
}

// Writes returns the number of successful record changes.
func (c *Calls) Writes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// Faults are a fake's scripted answers (F is the fake's Fault type),
// which replace real ones: for the next requests, or for every request
// while the provider is "down". Fakes embed it.
type Faults[F any] struct {
	mu   sync.Mutex
	next []F
	down *F
}

// FailNext makes the next n requests answer with f instead.
func (q *Faults[F]) FailNext(n int, f F) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for range n {
		q.next = append(q.next, f)
	}
}

// SetDown makes every request answer with f until SetDown(nil).
func (q *Faults[F]) SetDown(f *F) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.down = f
}

// Take returns the fault for the request being served, if any.
func (q *Faults[F]) Take() (F, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.down != nil {
		return *q.down, true
	}
	if len(q.next) > 0 {
		f := q.next[0]
		q.next = q.next[1:]
		return f, true
	}
	var zero F
	return zero, false
}

// ServeAPI starts a provider fake's API server with handler h on l (nil =
// 127.0.0.1:0, plain HTTP: see APIClient); it stops with the test.
func ServeAPI(t testing.TB, l net.Listener, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if l != nil {
		srv.Listener.Close()
		srv.Listener = l
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// RandString returns n random characters of alphabet, e.g. for keys and
// record IDs.
func RandString(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
