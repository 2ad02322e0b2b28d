package webui

import (
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSessionsSurviveRestart: a restart (a new Server over the same state
// directory) keeps people logged in and their open forms valid; the
// state file is 0600 and holds no cookie; a logout also survives it.
func TestSessionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	b := newBox(t, func(o *Options) { o.StateDir = dir }).configured().login()
	tok := b.token("/setup", "/setup/ports")
	restart := func() {
		t.Helper()
		o := b.s.o
		s, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		b.srv.Config.Handler = s
		b.s = s
	}
	restart()
	resp, body := b.post("/setup/ports", map[string][]string{"csrf": {tok}, "relay.derp_port": {"4444"}, "relay.stun_port": {"3478"}})
	mustStatus(t, "a form of before the restart", resp, body, http.StatusSeeOther)
	if got := b.store.Config().Relay.DERPPort; got != 4444 {
		t.Errorf("DERP port: got %d, want 4444", got)
	}
	path := filepath.Join(dir, SessionsFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0600 {
		t.Errorf("%s: mode %v, want 0600", SessionsFile, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(b.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == sessionCookie && strings.Contains(string(raw), c.Value) {
			t.Errorf("%s holds the session cookie itself", SessionsFile)
		}
	}
	resp, body = b.submit("/", "/logout", nil)
	mustStatus(t, "logout", resp, body, http.StatusSeeOther)
	old := b.c
	b.c = newClient()
	b.login()
	b.c = old
	restart()
	resp, _ = b.get("/")
	mustStatus(t, "the logged-out session after a restart", resp, "", http.StatusSeeOther)

	// A week later, even an active session has ended, restart or not.
	b.c = newClient()
	b.login()
	for range 7 {
		b.clock.Advance(23 * time.Hour)
		resp, _ = b.get("/")
		mustStatus(t, "an active session", resp, "", http.StatusOK)
	}
	b.clock.Advance(8 * time.Hour) // 169 h old
	restart()
	resp, _ = b.get("/")
	mustStatus(t, "a session past its lifetime", resp, "", http.StatusSeeOther)

	// A broken state file costs the sessions, not the start.
	if err := os.WriteFile(path, []byte("{"), 0600); err != nil {
		t.Fatal(err)
	}
	restart()
	b.c = newClient()
	b.login()
	resp, _ = b.get("/")
	mustStatus(t, "a login after the state file broke", resp, "", http.StatusOK)
}

// TestFormAfterLoginEnded: a form posted after its session ended goes to
// the login page (not the browser's Basic-auth dialog), which carries what
// was typed, secrets excepted; after the login the form shows it again,
// not saved, for the person to check and save.
func TestFormAfterLoginEnded(t *testing.T) {
	b := newBox(t, nil).configured().login()
	before := b.store.Config()
	ports := b.token("/setup", "/setup/ports")
	name := b.token("/setup", "/setup/name")
	b.clock.Advance(sessionIdle + time.Minute)

	resp, body := b.post("/setup/ports", url.Values{"csrf": {ports}, "relay.derp_port": {"4444"}, "relay.stun_port": {"4445"}})
	mustStatus(t, "a form after the session ended", resp, body, http.StatusUnauthorized)
	if h := resp.Header.Get("WWW-Authenticate"); h != "" {
		t.Errorf("WWW-Authenticate: %q; a browser would show its own password dialog", h)
	}
	contains(t, "login page", body, "You were logged out", `name="draft.relay.derp_port" value="4444"`, `name="next" value="/setup#ports"`)
	if strings.Contains(body, ports) {
		t.Error("the old CSRF token is carried along")
	}
	resp, body = b.post("/setup/name", url.Values{"csrf": {name}, "hostname": {"relay.example.com"}, "secret": {"cf-TYPED-secret-9999"}})
	mustStatus(t, "another form", resp, body, http.StatusUnauthorized)
	if strings.Contains(body, "cf-TYPED-secret-9999") {
		t.Error("a typed secret is carried to the login page")
	}

	// Log in through the page the ports form got.
	resp, body = b.post("/setup/ports", url.Values{"csrf": {ports}, "relay.derp_port": {"4444"}, "relay.stun_port": {"4445"}})
	form := url.Values{"password": {testPassword}}
	for _, m := range hiddenRx.FindAllStringSubmatch(body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	resp, body = b.post("/login", form)
	mustStatus(t, "login", resp, body, http.StatusSeeOther)
	if got := resp.Header.Get("Location"); got != "/setup#ports" {
		t.Errorf("after login: Location %q, want /setup#ports", got)
	}
	_, body = b.get("/setup")
	contains(t, "setup after login", body, "You were logged out before this was saved", `id="derp-port" name="relay.derp_port" value="4444"`, `value="4445"`)
	if got := b.store.Config(); got.Relay.DERPPort != before.Relay.DERPPort || got.Relay.STUNPort != before.Relay.STUNPort {
		t.Errorf("the draft was saved: %+v", got.Relay)
	}
	_, body = b.get("/setup")
	if strings.Contains(body, `value="4444"`) {
		t.Error("the draft is shown twice")
	}
}

var hiddenRx = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// TestRefreshKeepsFlash: the status page refreshing itself in one tab
// does not eat the "saved" message another tab is about to show.
func TestRefreshKeepsFlash(t *testing.T) {
	b := newBox(t, nil).configured().login()
	resp, body := b.submit("/setup", "/setup/ports", url.Values{"relay.derp_port": {"4444"}, "relay.stun_port": {"3478"}})
	mustStatus(t, "save ports", resp, body, http.StatusSeeOther)
	resp, body = b.get("/", refreshHeader, "1")
	mustStatus(t, "a refresh of the status page", resp, body, http.StatusOK)
	_, body = b.get("/setup")
	contains(t, "setup after the refresh", body, "Saved the ports: TCP 4444")
}
