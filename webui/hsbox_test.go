package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/headscaletest"
	"github.com/homederp/homederp/relay"
	"tailscale.com/tailcfg"
)

// Helpers of the headscale stories: a real `appliance -dev` whose own
// tailscaled is a headscaletest node, driven through its web UI over
// HTTP as a browser would (forms with CSRF tokens, JSON for reading).

// hsBox is the box of a headscale story.
type hsBox struct {
	*devBox
	ui       *testBox // a logged-in client of the box's web UI
	dir      string   // its state directory
	derpPort int
	stunPort int
	ts       *headscaletest.Node // the box's own tailscaled
}

// startHSBox starts the box's tailscaled (logged out) and the appliance,
// configured as setup steps 1–3 would leave it for a relay on loopback:
// hostname "localhost" (which every process here resolves), free DERP and
// STUN ports, and the LocalAPI socket of its tailscaled. modify may change
// the configuration before the appliance first reads it.
func startHSBox(t *testing.T, bin string, modify func(*config.Config)) *hsBox {
	t.Helper()
	b := &hsBox{dir: t.TempDir(), derpPort: devbox.FreePort(t), stunPort: devbox.FreePort(t)}
	b.ts = headscaletest.StartNode(t, "homederp-box", nil)
	c := config.Default()
	c.Hostname = "localhost"
	c.Relay.DERPPort, c.Relay.STUNPort = b.derpPort, b.stunPort
	c.Relay.TailscaledSocket = b.ts.Socket
	if modify != nil {
		modify(&c)
	}
	store, err := config.Open(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Save(c); err != nil {
		t.Fatal(err)
	}
	b.devBox = startDev(t, bin, b.dir)
	// The testBox helpers take the web UI's address from an httptest
	// server; here it is the appliance's.
	b.ui = &testBox{t: t, srv: &httptest.Server{URL: strings.TrimSuffix(b.url, "/")}, c: newClient()}
	resp, body := b.ui.loginWith(b.password)
	mustStatus(t, "login to the box", resp, body, http.StatusSeeOther)
	return b
}

// status reads the status page as JSON.
func (b *hsBox) status(t *testing.T) statusView {
	t.Helper()
	resp, body := b.ui.get("/", "Accept", "application/json")
	mustStatus(t, "GET / JSON", resp, body, http.StatusOK)
	var v statusView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// relayStatus is the relay's part of the status page.
func (b *hsBox) relayStatus(t *testing.T) relay.Status {
	t.Helper()
	v := b.status(t)
	if v.Relay == nil {
		t.Fatal("the status page has no relay status")
	}
	return *v.Relay
}

// mapPage reads the DERP map page as JSON.
func (b *hsBox) mapPage(t *testing.T) mapView {
	t.Helper()
	resp, body := b.ui.get("/derpmap", "Accept", "application/json")
	mustStatus(t, "GET /derpmap JSON", resp, body, http.StatusOK)
	var v mapView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// pathsFile downloads the derp.paths YAML the DERP map page offers and
// writes it where headscale will read it, as a user copies the file to
// the headscale machine.
func (b *hsBox) pathsFile(t *testing.T, path string) string {
	t.Helper()
	resp, body := b.ui.get("/derpmap/derpmap.yaml")
	mustStatus(t, "GET /derpmap/derpmap.yaml", resp, body, http.StatusOK)
	if path == "" {
		path = filepath.Join(t.TempDir(), "derp-homederp.yaml")
	}
	if err := os.WriteFile(path, []byte(body), 0644); err != nil {
		t.Fatal(err)
	}
	return path
}

// joinTailnet is setup step 5 as a user does it: the control server's URL
// and a pre-auth key into the tailnet form.
func (b *hsBox) joinTailnet(t *testing.T, controlURL, authKey string) {
	t.Helper()
	resp, body := b.ui.submit("/setup", "/setup/tailnet", url.Values{"tailnet.control_url": {controlURL}, "auth_key": {authKey}})
	mustStatus(t, "POST /setup/tailnet", resp, body, http.StatusSeeOther)
}

// setVerify is the "Who may use the relay" form.
func (b *hsBox) setVerify(t *testing.T, form url.Values) {
	t.Helper()
	resp, body := b.ui.submit("/setup", "/setup/verify", form)
	mustStatus(t, "POST /setup/verify "+form.Encode(), resp, body, http.StatusSeeOther)
}

// awaitRelay polls the relay's status (bounded) until ok returns "".
func (b *hsBox) awaitRelay(t *testing.T, what string, timeout time.Duration, ok func(relay.Status) string) relay.Status {
	t.Helper()
	var st relay.Status
	var why string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		st = b.relayStatus(t)
		if why = ok(st); why == "" {
			return st
		}
	}
	t.Fatalf("waiting %v for %s: %s", timeout, what, why)
	return st
}

// nodeRegion returns region id of the DERP map the node received from its
// control server, waiting (bounded) until want accepts it.
func nodeRegion(t *testing.T, n *headscaletest.Node, id int, want func(*tailcfg.DERPRegion) string) *tailcfg.DERPRegion {
	t.Helper()
	var why string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err := n.LocalClient().CurrentDERPMap(ctx)
		cancel()
		switch {
		case err != nil:
			why = err.Error()
		case m == nil || m.Regions[id] == nil:
			why = fmt.Sprintf("no region %d in %v", id, m)
		default:
			if why = want(m.Regions[id]); why == "" {
				return m.Regions[id]
			}
		}
	}
	t.Fatalf("%s: region %d of its DERP map: %s", n.Name, id, why)
	return nil
}

// nodeEnv is the environment of every story node: no direct UDP between
// nodes, so whatever they exchange goes through a DERP relay.
var nodeEnv = []string{"TS_DEBUG_NEVER_DIRECT_UDP=1"}

// netcheck runs `tailscale netcheck` on n until it reports the region
// code with a latency and a STUN answer (UDP: true), and returns its
// output for the test log.
func netcheck(t *testing.T, n *headscaletest.Node, code string) string {
	t.Helper()
	var out string
	for i := 0; i < 10; i++ {
		var err error
		out, err = n.Tailscale("netcheck")
		if err == nil && strings.Contains(out, "UDP: true") && netcheckLatency(out, code) {
			return out
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("tailscale netcheck on %s never reported UDP and a latency for %q:\n%s", n.Name, code, out)
	return ""
}

// netcheckLatency reports whether netcheck's "DERP latency" list has a
// measured latency for the region code, e.g. "- home: 1.2ms (Home)".
func netcheckLatency(out, code string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "-" && f[1] == code+":" && strings.HasSuffix(f[2], "s") {
			return true
		}
	}
	return false
}
