package webui

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/relay/peerrelay"
	"tailscale.com/client/local"
	"tailscale.com/tstest/integration"
)

// peerRelayJSON fetches a page as JSON and returns its peer relay view.
func peerRelayJSON(t *testing.T, b *testBox, page string) peerRelayView {
	t.Helper()
	resp, body := b.get(page, "Accept", "application/json")
	mustStatus(t, "GET "+page+" JSON", resp, body, http.StatusOK)
	var v struct {
		PeerRelay peerRelayView `json:"peer_relay"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	return v.PeerRelay
}

// awaitPeerRelay polls the status page (bounded) until ok accepts it.
func awaitPeerRelay(t *testing.T, b *testBox, what string, ok func(peerRelayView) bool) peerRelayView {
	t.Helper()
	var v peerRelayView
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if v = peerRelayJSON(t, b, "/"); ok(v) {
			return v
		}
	}
	t.Fatalf("waiting for %s: last peer relay state %+v (tailscaled %+v)", what, v, v.Tailscaled)
	return v
}

// relayPref is the box's tailscaled's relay server port preference.
func relayPref(t *testing.T, lc *local.Client) int {
	t.Helper()
	p, err := lc.GetPrefs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p.RelayServerPort == nil {
		return 0
	}
	return int(*p.RelayServerPort)
}

// TestPeerRelaySwitch drives the peer relay switch against a real
// tailscaled logged in to testcontrol: a bad port is refused before
// anything reaches tailscaled, the switch sets the preference and the
// status page shows the relay server running, the DERP map page gives the
// grant for the box's node, and switching off clears the preference.
func TestPeerRelaySwitch(t *testing.T) {
	testenv.NeedLong(t)
	env := integration.NewTestEnv(t)
	node := integration.NewTestNode(t, env)
	node.StartDaemon()
	node.AwaitResponding()
	node.MustUp()
	node.AwaitRunning()
	lc := node.LocalClient()
	b := newBox(t, func(o *Options) {
		o.Tailscaled = func(config.Config) *local.Client { return lc }
	}).configured().login()
	port := devbox.FreePort(t) // tailscaled binds it for udp4 and udp6

	t.Run("off by default", func(t *testing.T) {
		v := peerRelayJSON(t, b, "/setup")
		if v.Enabled || v.Port != config.DefaultPeerRelayPort || v.Tailscaled == nil || v.Tailscaled.Port != 0 || v.Tailscaled.Running {
			t.Errorf("fresh box: %+v (tailscaled %+v)", v, v.Tailscaled)
		}
		_, body := b.get("/")
		if strings.Contains(body, "peer relay is switched") {
			t.Errorf("the status page warns about a peer relay that is off:\n%s", body)
		}
	})

	t.Run("a port taken by STUN is refused and changes nothing", func(t *testing.T) {
		resp, body := b.submit("/setup", "/setup/peerrelay", url.Values{"peer_relay.enabled": {"on"}, "peer_relay.port": {"3478"}})
		mustStatus(t, "STUN's port", resp, body, http.StatusBadRequest)
		contains(t, "setup page", body, "udp 3478 is the STUN port")
		if got := b.store.Config().PeerRelay; got.Enabled || got.Port != config.DefaultPeerRelayPort {
			t.Errorf("config after a refused port: %+v", got)
		}
		if got := relayPref(t, lc); got != 0 {
			t.Errorf("tailscaled's relay port after a refused port: got %d, want 0", got)
		}
		resp, body = b.submit("/setup", "/setup/peerrelay", url.Values{"peer_relay.enabled": {"on"}, "peer_relay.port": {"forty"}})
		mustStatus(t, "not a number", resp, body, http.StatusBadRequest)
		contains(t, "setup page", body, `&#34;forty&#34; is not a whole number`, `value="forty"`)
	})

	t.Run("switched on", func(t *testing.T) {
		resp, body := b.submit("/setup", "/setup/peerrelay", url.Values{"peer_relay.enabled": {"on"}, "peer_relay.port": {strconv.Itoa(port)}})
		mustStatus(t, "switch on", resp, body, http.StatusSeeOther)
		if got := relayPref(t, lc); got != port {
			t.Errorf("tailscaled's relay port: got %d, want %d", got, port)
		}
		_, body = b.get("/setup")
		contains(t, "setup page", body, "now relays on UDP "+strconv.Itoa(port), `<td data-label="For">Tailscale peer relay</td>`)
		v := awaitPeerRelay(t, b, "the relay server running", func(v peerRelayView) bool {
			return v.Tailscaled != nil && v.Tailscaled.Running
		})
		if !v.Enabled || v.Port != port || v.Tailscaled.Port != port || !v.Applied() {
			t.Errorf("status after switching on: %+v (tailscaled %+v)", v, v.Tailscaled)
		}
		_, body = b.get("/")
		contains(t, "status page", body, "relaying on UDP "+strconv.Itoa(port))
		if strings.Contains(body, "peer relay is switched") || strings.Contains(body, "relay server is not running") {
			t.Errorf("the status page warns about a running peer relay:\n%s", body)
		}
	})

	t.Run("the DERP map page has the grant for the box's node", func(t *testing.T) {
		ip := node.AwaitIP4().String()
		v := peerRelayJSON(t, b, "/derpmap")
		want := peerrelay.Grant(ip)
		if v.Box != ip || v.Grant != string(want) {
			t.Errorf("map page: box %q, grant\n%s\nwant box %q, grant\n%s", v.Box, v.Grant, ip, want)
		}
		_, body := b.get("/derpmap")
		contains(t, "DERP map page", body, `id="peerrelay"`, `&#34;tailscale.com/cap/relay&#34;: []`, `&#34;`+ip+`&#34;`, "headscale 0.28 and older")
	})

	t.Run("a tailscaled that lost the setting is a warning", func(t *testing.T) {
		// As after a logout: the new login profile has no relay port.
		if _, err := peerrelay.Apply(t.Context(), lc, 0); err != nil {
			t.Fatal(err)
		}
		_, body := b.get("/")
		contains(t, "status page", body, "has not taken the setting yet")
	})

	t.Run("a port taken on the box is a warning", func(t *testing.T) {
		taken, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		takenPort := taken.LocalAddr().(*net.UDPAddr).Port
		resp, body := b.submit("/setup", "/setup/peerrelay", url.Values{"peer_relay.enabled": {"on"}, "peer_relay.port": {strconv.Itoa(takenPort)}})
		mustStatus(t, "switch on a taken port", resp, body, http.StatusSeeOther)
		v := peerRelayJSON(t, b, "/")
		if v.Tailscaled == nil || v.Tailscaled.Port != takenPort || v.Tailscaled.Running {
			t.Errorf("on a taken port: %+v (tailscaled %+v), want the port set and the server not running", v, v.Tailscaled)
		}
		_, body = b.get("/")
		contains(t, "status page", body, "set to relay on UDP "+strconv.Itoa(takenPort)+", but its relay server is not running")
	})

	t.Run("switched off", func(t *testing.T) {
		if _, err := peerrelay.Apply(t.Context(), lc, port); err != nil {
			t.Fatal(err)
		}
		resp, body := b.submit("/setup", "/setup/peerrelay", url.Values{"peer_relay.port": {strconv.Itoa(port)}})
		mustStatus(t, "switch off", resp, body, http.StatusSeeOther)
		if got := relayPref(t, lc); got != 0 {
			t.Errorf("tailscaled's relay port after switching off: got %d, want 0", got)
		}
		if got := b.store.Config().PeerRelay; got.Enabled || got.Port != port {
			t.Errorf("config after switching off: %+v, want off with the port kept", got)
		}
		awaitPeerRelay(t, b, "the relay server stopped", func(v peerRelayView) bool {
			return v.Tailscaled != nil && !v.Tailscaled.Running && v.Tailscaled.Port == 0
		})
		_, body = b.get("/setup")
		contains(t, "setup page", body, "no longer relays for other nodes")
	})
}
