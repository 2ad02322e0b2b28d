package webui

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
)

const testPassword = "correct horse battery staple"

// fakeClock is a settable clock for the rate limiter and sessions.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testBox is a web UI on loopback over a real config store in a temp dir,
// with a browser-like client (cookie jar, redirects not followed).
type testBox struct {
	t     *testing.T
	s     *Server
	store *config.Store
	srv   *httptest.Server
	c     *http.Client
	clock *fakeClock
}

func newBox(t *testing.T, modify func(*Options)) *testBox {
	t.Helper()
	store, err := config.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	o := Options{
		Store:    store,
		Password: testPassword,
		Logf:     t.Logf,
		Now:      clock.Now,
		LANAddrs: func() []netip.Addr {
			return []netip.Addr{netip.MustParseAddr("192.168.1.23"), netip.MustParseAddr("fe80::1")}
		},
		MapOptions: func() derpmap.Options { return derpmap.Options{PinnedCert: []byte("test certificate")} },
		CertDir:    "/perm/homederp/certs",
		BoxName:    "homederp",
	}
	if modify != nil {
		modify(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &testBox{t: t, s: s, store: store, srv: srv, c: newClient(), clock: clock}
}

func newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       60 * time.Second,
	}
}

// configured gives the box a valid config with a hostname.
func (b *testBox) configured() *testBox {
	b.t.Helper()
	c := config.Default()
	c.Hostname = "derp.example.com"
	if err := b.store.Save(c); err != nil {
		b.t.Fatal(err)
	}
	return b
}

func (b *testBox) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(body)
}

// get fetches path; hdr are header name/value pairs.
func (b *testBox) get(path string, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.srv.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

func (b *testBox) postRaw(path, contentType, body string, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

func (b *testBox) post(path string, form url.Values, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	return b.postRaw(path, "application/x-www-form-urlencoded", form.Encode(), hdr...)
}

// submit posts form to action with the CSRF token the page shows for it,
// as a browser would.
func (b *testBox) submit(page, action string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.token(page, action))
	return b.post(action, form)
}

var formRx = regexp.MustCompile(`<form method="post" action="([^"#]+)(?:#[^"]*)?"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)">`)

// token returns the CSRF token of the form posting to action on page.
func (b *testBox) token(page, action string) string {
	b.t.Helper()
	resp, body := b.get(page)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("GET %s: %s", page, resp.Status)
	}
	for _, m := range formRx.FindAllStringSubmatch(body, -1) {
		if m[1] == action {
			return m[2]
		}
	}
	b.t.Fatalf("GET %s: no form posting to %s", page, action)
	return ""
}

// login logs the client in through the form.
func (b *testBox) login() *testBox {
	b.t.Helper()
	resp, body := b.loginWith(testPassword)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("login: %s\n%s", resp.Status, body)
	}
	return b
}

func (b *testBox) loginWith(pw string) (*http.Response, string) {
	b.t.Helper()
	resp, body := b.get("/login")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("GET /login: %s, no token\n%s", resp.Status, body)
	}
	return b.post("/login", url.Values{"csrf": {m[1]}, "password": {pw}, "next": {"/setup"}})
}

// mustStatus fails unless resp has the wanted status.
func mustStatus(t *testing.T, what string, resp *http.Response, body string, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: got %s, want %d\n%s", what, resp.Status, want, body)
	}
}

func contains(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	failed := false
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s: lacks %q", what, w)
			failed = true
		}
	}
	if failed {
		t.Logf("%s body:\n%s", what, body)
	}
}
