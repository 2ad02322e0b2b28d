package ddnstest

import (
	"context"
	"crypto/rand"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Fake is what every provider fake is made of besides the vendor's API:
// the HTTP server, a client that reaches it under the vendor's API host,
// the request counts, the scripted faults (F is the fake's Fault type) and
// the DNS side. Fakes embed it, so that its methods are theirs, and start
// it from their New.
type Fake[F any] struct {
	URL string // e.g. http://127.0.0.1:40000

	// Calls counts requests by route (e.g. "UpdateDomainRecord") and
	// successful record changes.
	Calls
	// Faults replace the next answers (FailNext) or all (SetDown).
	Faults[F]
	// DNSSide serves what the fake holds (see StartDNS).
	DNSSide

	host string
	logf func(format string, args ...any)
	srv  *httptest.Server
}

// Serving is what a fake serves.
type Serving struct {
	Host     string       // the vendor's API host, e.g. "alidns.aliyuncs.com"
	Listener net.Listener // for the API; nil = 127.0.0.1:0 (plain HTTP)
	API      http.Handler
	Zones    func() []AuthZone                // what the DNS side serves (see StartDNS)
	Logf     func(format string, args ...any) // logs every request; nil = quiet
}

// Start starts the fake's API server; it stops with the test.
func (f *Fake[F]) Start(t testing.TB, s Serving) {
	t.Helper()
	f.srv = httptest.NewUnstartedServer(s.API)
	if s.Listener != nil {
		f.srv.Listener.Close()
		f.srv.Listener = s.Listener
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	f.URL, f.host, f.logf, f.zones = f.srv.URL, s.Host, s.Logf, s.Zones
}

// Intercept logs and counts a request of route (e.g. the action it
// calls) and, if a fault is scripted, answers it with write and returns
// true: the fake's handler then stops. Every fake's handler starts with
// it.
func (f *Fake[F]) Intercept(w http.ResponseWriter, r *http.Request, route string, write func(http.ResponseWriter, F)) bool {
	if f.logf != nil {
		f.logf("%s: %s %s (%s)", f.host, r.Method, r.URL.RequestURI(), route)
	}
	f.Count(route)
	fault, ok := f.Take()
	if ok {
		write(w, fault)
	}
	return ok
}

// Close stops the API server: later calls get "connection refused", as
// when the provider is unreachable.
func (f *Fake[F]) Close() { f.srv.Close() }

// Client returns an HTTP client that sends requests for the vendor's API
// host to the fake.
func (f *Fake[F]) Client() *http.Client { return f.ClientDialing(nil) }

// ClientDialing is Client with a custom dialer, e.g. one that dials from
// inside a test bed's namespace.
func (f *Fake[F]) ClientDialing(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	return APIClient(f.host, f.URL, dial)
}

// WriteRaw answers as something in the way of the API would, e.g. a
// proxy's error page or a captive portal: status and body, of
// contentType ("" = text/html).
func WriteRaw(w http.ResponseWriter, status int, contentType, body string) {
	if contentType == "" {
		contentType = "text/html"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

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

// Alnum is the alphabet of the cloud providers' key IDs and secrets.
const Alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

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
