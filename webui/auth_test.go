package webui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	b := newBox(t, nil).configured()
	check := func(what string, resp *http.Response) {
		t.Helper()
		for h, want := range map[string]string{
			"X-Frame-Options":        "DENY",
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %s: got %q, want %q", what, h, got, want)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", what, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code: %q", what, csp)
		}
	}
	for _, p := range []string{"/", "/login", "/static/style.css", "/nope"} {
		resp, _ := b.get(p)
		check("GET "+p+" (logged out)", resp)
	}
	b.login()
	for _, p := range []string{"/", "/setup", "/derpmap", "/metrics", "/derpmap/derpmap.json"} {
		resp, _ := b.get(p)
		check("GET "+p, resp)
	}
	resp, _ := b.post("/setup/ports", url.Values{})
	check("POST without a token", resp)
}

// TestNoInlineScriptOrStyle keeps the pages compatible with the CSP.
func TestNoInlineScriptOrStyle(t *testing.T) {
	b := newBox(t, nil).configured().login()
	for _, p := range []string{"/", "/setup", "/derpmap", "/login"} {
		_, body := b.get(p)
		for _, bad := range []string{"<script>", "style=", "onclick=", "onsubmit=", "javascript:", "<style"} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s: contains %q, which the CSP blocks", p, bad)
			}
		}
	}
}

func TestRefusesNonPrivateSources(t *testing.T) {
	b := newBox(t, nil)
	for _, tt := range []struct {
		remote string
		want   bool // served (not 403)
	}{
		{"127.0.0.1:5000", true},
		{"[::1]:5000", true},
		{"192.168.1.50:5000", true},
		{"10.1.2.3:5000", true},
		{"172.16.0.9:5000", true},
		{"[fd12:3456::1]:5000", true},
		{"[fe80::1%eth0]:5000", true},
		{"100.101.102.103:5000", true}, // the tailnet, as gokrazy allows
		{"[::ffff:192.168.1.50]:5000", true},
		{"203.0.113.5:5000", false},
		{"[2001:db8::5]:5000", false},
		{"[::ffff:198.51.100.7]:5000", false},
		{"garbage", false},
	} {
		req := httptest.NewRequest("GET", "/login", nil)
		req.RemoteAddr = tt.remote
		req.Host = "homederp"
		w := httptest.NewRecorder()
		b.s.ServeHTTP(w, req)
		if got := w.Code != http.StatusForbidden; got != tt.want {
			t.Errorf("GET /login from %s: status %d, want served=%v", tt.remote, w.Code, tt.want)
		}
		if !tt.want && w.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("refusal to %s lacks security headers", tt.remote)
		}
	}
}

// TestLoginStory walks a person through logging in and out.
func TestLoginStory(t *testing.T) {
	b := newBox(t, nil).configured()

	resp, _ := b.get("/setup?x=1")
	mustStatus(t, "GET /setup logged out", resp, "", http.StatusSeeOther)
	if got, want := resp.Header.Get("Location"), "/login?next=%2Fsetup%3Fx%3D1"; got != want {
		t.Errorf("redirect: got %q, want %q", got, want)
	}

	resp, body := b.get("/", "Accept", "application/json")
	mustStatus(t, "JSON logged out", resp, body, http.StatusUnauthorized)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("JSON 401 without a Basic challenge: %q", resp.Header.Get("WWW-Authenticate"))
	}

	resp, body = b.loginWith("wrong password")
	mustStatus(t, "wrong password", resp, body, http.StatusUnauthorized)
	contains(t, "wrong password page", body, "Wrong password")
	if strings.Contains(body, "wrong password\"") || strings.Contains(body, "value=\"wrong password") {
		t.Error("the typed password is sent back")
	}

	// A login form without its token is refused, even with the right password.
	resp, body = b.post("/login", url.Values{"password": {testPassword}})
	mustStatus(t, "login without token", resp, body, http.StatusForbidden)

	resp, body = b.loginWith(testPassword)
	mustStatus(t, "right password", resp, body, http.StatusSeeOther)
	if got := resp.Header.Get("Location"); got != "/setup" {
		t.Errorf("after login: redirect to %q, want /setup", got)
	}
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie: got %+v, want HttpOnly and SameSite=Strict", sess)
	}
	resp, _ = b.get("/")
	mustStatus(t, "GET / logged in", resp, "", http.StatusOK)

	resp, body = b.submit("/", "/logout", nil)
	mustStatus(t, "logout", resp, body, http.StatusSeeOther)
	resp, _ = b.get("/")
	mustStatus(t, "GET / after logout", resp, "", http.StatusSeeOther)

	// The old session cookie is dead server-side too.
	c := newClient()
	u, _ := url.Parse(b.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: sess.Value}})
	r2, err := c.Get(b.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusSeeOther {
		t.Errorf("old session after logout: got %s, want a redirect to /login", r2.Status)
	}
}

// TestOpenRedirectRefused: only a local path of this UI survives as the
// target after login; browsers read the others as another host.
func TestOpenRedirectRefused(t *testing.T) {
	for in, want := range map[string]string{
		"/derpmap":              "/derpmap",
		"/setup?x=1#ports":      "/setup?x=1#ports",
		"//evil.example/":       "/",
		"https://evil.example":  "/",
		"/\\evil.example":       "/",
		"/\t/evil.example":      "/",
		"/\n/evil.example":      "/",
		"/\r//evil.example":     "/",
		"/\x7f/evil.example":    "/",
		"/%09/evil.example":     "/%09/evil.example", // stays a path: the browser does not decode it
		"/setup\\..\\evil":      "/",
		"javascript:alert(1)":   "/",
		"mailto:x@evil.example": "/",
		"":                      "/",
		"setup":                 "/",
		"/login":                "/",
		"/login?next=//evil":    "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q): got %q, want %q", in, got, want)
		}
	}
	// And through the login form, as the issue found it.
	b := newBox(t, nil).configured()
	resp, body := b.get("/login")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no login token:\n%s", body)
	}
	resp, body = b.post("/login", url.Values{"csrf": {m[1]}, "password": {testPassword}, "next": {"/\t/evil.example"}})
	mustStatus(t, "login", resp, body, http.StatusSeeOther)
	if got := resp.Header.Get("Location"); got != "/" {
		t.Errorf("Location after a login with next=/<TAB>/evil.example: got %q, want /", got)
	}
}

func TestSessionExpires(t *testing.T) {
	b := newBox(t, nil).configured().login()
	b.clock.Advance(sessionIdle + time.Minute)
	resp, _ := b.get("/")
	mustStatus(t, "GET / after a day idle", resp, "", http.StatusSeeOther)
}

func TestBasicAuth(t *testing.T) {
	b := newBox(t, nil).configured()
	for _, tt := range []struct {
		user, pw string
		want     int
	}{
		{"gokrazy", testPassword, http.StatusOK},
		{"gokrazy", "nope", http.StatusUnauthorized},
		{"admin", testPassword, http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest("GET", b.srv.URL+"/", nil)
		req.SetBasicAuth(tt.user, tt.pw)
		req.Header.Set("Accept", "application/json")
		resp, body := b.do(req)
		if resp.StatusCode != tt.want {
			t.Errorf("Basic %s:%s: got %s, want %d\n%s", tt.user, tt.pw, resp.Status, tt.want, body)
		}
	}
}

func TestNoPasswordLocksEveryoneOut(t *testing.T) {
	b := newBox(t, func(o *Options) { o.Password = "" }).configured()
	resp, body := b.loginWith("")
	mustStatus(t, "empty password", resp, body, http.StatusUnauthorized)
	contains(t, "login page", body, "no web UI password set")
	req, _ := http.NewRequest("GET", b.srv.URL+"/", nil)
	req.SetBasicAuth("gokrazy", "")
	resp, _ = b.do(req)
	mustStatus(t, "Basic with empty password", resp, "", http.StatusUnauthorized)
}

// TestLoginRateLimit: a source that keeps guessing is slowed to a trickle,
// is refused even with the right password while blocked, recovers with
// time, and does not block others.
func TestLoginRateLimit(t *testing.T) {
	b := newBox(t, nil).configured()
	for i := 0; i < loginBurst; i++ {
		resp, body := b.loginWith(fmt.Sprintf("guess %d", i))
		mustStatus(t, fmt.Sprintf("guess %d", i), resp, body, http.StatusUnauthorized)
	}
	resp, body := b.loginWith(testPassword)
	mustStatus(t, "right password while blocked", resp, body, http.StatusTooManyRequests)
	contains(t, "blocked login", body, "Too many wrong passwords")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	req, _ := http.NewRequest("GET", b.srv.URL+"/", nil)
	req.SetBasicAuth("gokrazy", testPassword)
	resp, _ = b.do(req)
	mustStatus(t, "Basic auth while blocked", resp, "", http.StatusTooManyRequests)

	// Another LAN host is not affected.
	req = httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "192.168.1.77:4000"
	req.Host = "homederp"
	req.SetBasicAuth("gokrazy", testPassword)
	req.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	b.s.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Errorf("another host: got %d, want 200", w.Code)
	}

	b.clock.Advance(loginEvery)
	resp, body = b.loginWith(testPassword)
	mustStatus(t, "right password after waiting", resp, body, http.StatusSeeOther)
}

func TestLoginLimiterMemoryIsBounded(t *testing.T) {
	l := loginLimiter{now: time.Now}
	for i := 0; i < 3*maxLimitedSource; i++ {
		l.fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if got := l.cache.Len(); got > maxLimitedSource {
		t.Errorf("tracked sources: got %d, want at most %d", got, maxLimitedSource)
	}
}

func TestCSRF(t *testing.T) {
	b := newBox(t, nil).configured().login()
	before := b.store.Config()
	good := b.token("/setup", "/setup/ports")
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "relay.derp_port": {"4444"}, "relay.stun_port": {"4445"}}
	}
	other := newBox(t, nil).configured().login()
	for _, tt := range []struct {
		name string
		tok  string
		hdr  []string
	}{
		{"no token", "", nil},
		{"garbage token", "abc:123", nil},
		{"token of another form", b.token("/setup", "/setup/region"), nil},
		{"token of another server", other.token("/setup", "/setup/ports"), nil},
		{"foreign origin", good, []string{"Origin", "http://evil.example"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := b.post("/setup/ports", form(tt.tok), tt.hdr...)
			mustStatus(t, "POST", resp, body, http.StatusForbidden)
			if got := b.store.Config(); !reflect.DeepEqual(got, before) {
				t.Errorf("config changed by a refused form: %+v", got.Relay)
			}
		})
	}
	// A token from one session is useless in another session.
	b2 := newBox(t, nil)
	b2.s = b.s
	b2.srv = b.srv
	b2.c = newClient()
	b2.login()
	resp, body := b2.post("/setup/ports", form(good))
	mustStatus(t, "another session's token", resp, body, http.StatusForbidden)

	resp, body = b.post("/setup/ports", form(good), "Origin", b.srv.URL)
	mustStatus(t, "good token, same origin", resp, body, http.StatusSeeOther)
	if got := b.store.Config().Relay.DERPPort; got != 4444 {
		t.Errorf("DERP port after a good form: got %d, want 4444", got)
	}
}

func TestMalformedForms(t *testing.T) {
	b := newBox(t, nil).configured().login()
	before := b.store.Config()
	tok := b.token("/setup", "/setup/ports")
	for _, tt := range []struct {
		name, ctype, body string
		want              int
	}{
		{"bad escape", "application/x-www-form-urlencoded", "csrf=" + url.QueryEscape(tok) + "&relay.derp_port=%zz", http.StatusBadRequest},
		{"too large", "application/x-www-form-urlencoded", "csrf=" + url.QueryEscape(tok) + "&x=" + strings.Repeat("a", maxForm+1), http.StatusBadRequest},
		{"not a number", "application/x-www-form-urlencoded", "csrf=" + url.QueryEscape(tok) + "&relay.derp_port=twelve&relay.stun_port=3478", http.StatusBadRequest},
		{"missing fields", "application/x-www-form-urlencoded", "csrf=" + url.QueryEscape(tok), http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := b.postRaw("/setup/ports", tt.ctype, tt.body)
			mustStatus(t, "POST", resp, body, tt.want)
			if got := b.store.Config(); !reflect.DeepEqual(got, before) {
				t.Errorf("config changed by a malformed form: %+v", got.Relay)
			}
			if !strings.Contains(body, "Nothing was changed") && !strings.Contains(body, "not a whole number") && !strings.Contains(body, "needs a number") {
				t.Errorf("no clear message:\n%s", body)
			}
		})
	}
	resp, body := b.postRaw("/setup/ports", "application/x-www-form-urlencoded", "csrf="+url.QueryEscape(tok)+"&relay.derp_port=twelve&relay.stun_port=3478")
	mustStatus(t, "not a number", resp, body, http.StatusBadRequest)
	contains(t, "form shown again", body, `value="twelve"`, `&#34;twelve&#34; is not a whole number`)
}

// serveFrom sends req to the server as if it came from remote (e.g.
// "[fd00::1]:4000") and returns the answer.
func (b *testBox) serveFrom(remote string, req *http.Request) *httptest.ResponseRecorder {
	req.RemoteAddr = remote
	req.Host = "homederp"
	w := httptest.NewRecorder()
	b.s.ServeHTTP(w, req)
	return w
}

// loginFrom goes through the login form from remote, with the given
// cookies, and returns the answer to the POST.
func (b *testBox) loginFrom(remote, pw string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	b.t.Helper()
	get := httptest.NewRequest("GET", "/login", nil)
	for _, c := range cookies {
		get.AddCookie(c)
	}
	w := b.serveFrom(remote, get)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(w.Body.String())
	if m == nil {
		b.t.Fatalf("GET /login from %s: %d, no token", remote, w.Code)
	}
	post := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"csrf": {m[1]}, "password": {pw}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range append(w.Result().Cookies(), cookies...) {
		if c.MaxAge >= 0 {
			post.AddCookie(c)
		}
	}
	return b.serveFrom(remote, post)
}

// TestLoginLimitIsPerAddress: a device that guesses wrong locks out only
// itself, not its IPv6 neighbours in the same /64, and a browser that
// carries a valid session is never held up, not even from that address.
func TestLoginLimitIsPerAddress(t *testing.T) {
	b := newBox(t, nil).configured()
	const guesser, neighbour = "[fd12:3456:789a:1::10]:4000", "[fd12:3456:789a:1::11]:4000"
	w := b.loginFrom(guesser, testPassword)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("first login from %s: %d", guesser, w.Code)
	}
	var sess *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			sess = c
		}
	}
	for i := range loginBurst {
		if w := b.loginFrom(guesser, fmt.Sprintf("guess %d", i)); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	if w := b.loginFrom(guesser, testPassword); w.Code != http.StatusTooManyRequests {
		t.Errorf("the guesser with the right password: got %d, want 429", w.Code)
	}
	if w := b.loginFrom(neighbour, testPassword); w.Code != http.StatusSeeOther {
		t.Errorf("a neighbour in the same /64 with the right password: got %d, want 303", w.Code)
	}
	get := httptest.NewRequest("GET", "/", nil)
	get.AddCookie(sess)
	if w := b.serveFrom(guesser, get); w.Code != http.StatusOK {
		t.Errorf("GET / with a valid session from the locked-out address: got %d, want 200", w.Code)
	}
	if w := b.loginFrom(guesser, testPassword, sess); w.Code != http.StatusSeeOther {
		t.Errorf("logging in again with a valid session from the locked-out address: got %d, want 303", w.Code)
	}
}

// TestLoginLimitFollowsTheBrowser: a browser that keeps its login cookie
// while its IPv6 privacy address changes is still slowed down.
func TestLoginLimitFollowsTheBrowser(t *testing.T) {
	b := newBox(t, nil).configured()
	w := b.serveFrom("[fd12::1]:4000", httptest.NewRequest("GET", "/login", nil))
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == loginCookie {
			cookie = c
		}
	}
	for i := range loginBurst {
		b.loginFrom(fmt.Sprintf("[fd12::%x]:4000", 100+i), "wrong", cookie)
	}
	if w := b.loginFrom("[fd12::200]:4000", testPassword, cookie); w.Code != http.StatusTooManyRequests {
		t.Errorf("the same browser from a new address: got %d, want 429", w.Code)
	}
}
