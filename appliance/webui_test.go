package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/webui"
)

// TestDevWebUI: `appliance -dev` serves the web UI on loopback with a
// generated password that it prints, keeps (0600) and reuses, and the web
// UI shows the running relay and its metrics.
func TestDevWebUI(t *testing.T) {
	bin := devbox.Build(t)
	stateDir := t.TempDir()
	derpPort, stunPort := devbox.FreePort(t), devbox.FreePort(t)
	opts := devbox.Options{StateDir: stateDir, DERPPort: derpPort, STUNPort: stunPort}

	box := devbox.Start(t, bin, opts)
	base, pw, ok := box.WebUI()
	if !ok {
		t.Fatalf("summary has no web UI line:\n%s", box.Summary)
	}
	fi, err := os.Stat(filepath.Join(stateDir, "webui-password"))
	if err != nil || fi.Mode().Perm() != 0600 {
		t.Fatalf("webui-password: %v %v, want mode 0600", err, fi)
	}

	get := func(path, accept string, auth bool) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+strings.TrimPrefix(path, "/"), nil)
		req.Header.Set("Accept", accept)
		if auth {
			req.SetBasicAuth("gokrazy", pw)
		}
		c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, _ := get("/", "application/json", false); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status without the password: %s, want 401", resp.Status)
	}
	resp, body := get("/", "application/json", true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %s\n%s", resp.Status, body)
	}
	var st struct {
		Hostname string
		Relay    struct {
			DERPAddrs []string
			CertMode  string
		}
		Logs []webui.LogLine
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Hostname != "localhost" || strings.Join(st.Relay.DERPAddrs, " ") != "127.0.0.1:"+itoa(derpPort)+" [::1]:"+itoa(derpPort) || st.Relay.CertMode != "self-signed" {
		t.Errorf("status JSON: %+v", st)
	}
	sawRelay := false
	for _, l := range st.Logs {
		sawRelay = sawRelay || strings.Contains(l.Text, "DERP over TLS listening")
	}
	if !sawRelay {
		t.Errorf("the status page's log lacks the relay's start-up line: %+v", st.Logs)
	}
	resp, body = get("/derpmap", "application/json", true)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `\"DERPPort\": `+itoa(derpPort)) {
		t.Errorf("DERP map page: %s\n%s", resp.Status, body)
	}
	resp, body = get("/metrics", "text/plain", true)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "# TYPE") {
		t.Errorf("/metrics: %s\n%.500s", resp.Status, body)
	}
	box.Stop(t)

	// The second run keeps the password.
	box = devbox.Start(t, bin, opts)
	if _, pw2, ok := box.WebUI(); !ok || pw2 != pw {
		t.Errorf("second run: web UI password %q (found: %v), want the same password\n%s", pw2, ok, box.Summary)
	}
	box.Stop(t)
}

// TestWebUIFollowsAddresses: on the box the web UI binds each private
// address; when the set changes (a new DHCP lease), the listeners follow.
func TestWebUIFollowsAddresses(t *testing.T) {
	ws := &webuiService{
		ls:   &webui.Listeners{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Logf: t.Logf},
		stop: make(chan struct{}),
	}
	var mu sync.Mutex
	hosts := []string{"127.0.0.1"}
	setHosts := func(h ...string) {
		mu.Lock()
		defer mu.Unlock()
		hosts = h
	}
	ws.wg.Add(1)
	go func() {
		defer ws.wg.Done()
		ws.follow(func() ([]string, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), hosts...), nil
		}, "0", 20*time.Millisecond, t.Logf)
	}()
	defer ws.close()
	await := func(want string) {
		t.Helper()
		testwait.For(t, 10*time.Second, fmt.Sprintf("listeners on hosts %q", want), func() error {
			var got []string
			for _, a := range ws.ls.Addrs() {
				h, _, _ := strings.Cut(a.String(), ":")
				got = append(got, h)
			}
			if strings.Join(got, ",") != want {
				return fmt.Errorf("got %v, want hosts %s", ws.ls.Addrs(), want)
			}
			return nil
		})
	}
	await("127.0.0.1")
	setHosts("127.0.0.2")
	await("127.0.0.2")
	setHosts()
	await("")
}

func TestRandomPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		pw, err := randomPassword(devPasswordLen)
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != devPasswordLen || strings.ContainsAny(pw, "0O1lI") || seen[pw] {
			t.Fatalf("randomPassword: %q", pw)
		}
		seen[pw] = true
	}
}
