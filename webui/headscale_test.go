package webui

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/headscaletest"
	"github.com/homederp/homederp/internal/pebbletest"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/tailcfg"
)

// TestHeadscale is the box with a real headscale, as its users run it:
// the map goes into headscale's derp.paths as the DERP map page offers
// it, the box's tailscaled joins through the web UI's tailnet step, and
// verify-clients, then headscale's own /verify, decide who may relay.
func TestHeadscale(t *testing.T) {
	testenv.NeedLong(t)
	bin := devbox.Build(t)
	box := startHSBox(t, bin, nil)
	pin := box.mapPage(t)
	if !pin.Pinned {
		t.Fatalf("a fresh box's map does not pin its self-signed certificate: %+v", pin)
	}
	home := devbox.ReadMap(t, box.dir).Regions[900]

	hs := headscaletest.Start(t, headscaletest.Options{DERPPaths: []string{box.pathsFile(t, "")}})
	user := hs.CreateUser(t, "family")
	key := hs.PreAuthKey(t, user)

	t.Run("the box joins headscale through the tailnet step", func(t *testing.T) {
		box.joinTailnet(t, hs.URL, key)
		v := box.status(t).Tailnet
		if !v.Running() || v.ControlURL != hs.URL || len(v.IPs) == 0 {
			t.Fatalf("tailnet after the login: %+v; want Running at %s with an address", v, hs.URL)
		}
		if !slices.Contains(hs.NodeKeys(t), box.ts.NodeKey(t)) {
			t.Errorf("headscale does not list the box's node key %s", box.ts.NodeKey(t))
		}
	})

	laptop := headscaletest.StartNode(t, "laptop", nodeEnv)
	phone := headscaletest.StartNode(t, "phone", nodeEnv)
	laptop.Up(t, hs.URL, key)
	phone.Up(t, hs.URL, key)

	t.Run("derp.paths: the nodes get region 900 with the pin and relay through it", func(t *testing.T) {
		got := nodeRegion(t, laptop, 900, func(r *tailcfg.DERPRegion) string {
			if len(r.Nodes) != 1 {
				return "not one node"
			}
			return ""
		})
		n, want := got.Nodes[0], home.Nodes[0]
		if n.CertName != want.CertName || !strings.HasPrefix(n.CertName, "sha256-raw:") || n.HostName != want.HostName ||
			n.DERPPort != want.DERPPort || n.STUNPort != want.STUNPort || n.RegionID != 900 || got.RegionCode != "home" {
			t.Errorf("region 900 as headscale hands it out: %+v\nwant the box's node %+v", n, want)
		}
		out, err := laptop.PingVia(t, phone, "DERP(home)", 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("tailscale ping laptop → phone:\n%s", out)
	})

	t.Run("tailscale netcheck reports the home region and its STUN", func(t *testing.T) {
		t.Logf("tailscale netcheck on laptop:%s", netcheck(t, laptop, "home"))
	})

	t.Run("verify-clients admits this headscale's nodes and refuses another's", func(t *testing.T) {
		box.setVerify(t, url.Values{"relay.verify": {"tailscaled"}})
		box.awaitRelay(t, "verify-clients with the box's tailscaled Running", 30*time.Second, func(st relay.Status) string {
			if st.VerifyMode != "tailscaled" || st.TailscaledState != "Running" || st.TailscaledPeers < 2 {
				return st.VerifyMode + ", tailscaled " + st.TailscaledState
			}
			return ""
		})
		if _, err := laptop.PingVia(t, phone, "DERP(home)", 60*time.Second); err != nil {
			t.Fatal(err)
		}
		other := headscaletest.Start(t, headscaletest.Options{DERPPaths: []string{box.pathsFile(t, "")}})
		stranger := headscaletest.StartNode(t, "stranger", nodeEnv)
		stranger.Up(t, other.URL, other.PreAuthKey(t, other.CreateUser(t, "neighbours")))
		strangerKey := stranger.NodeKey(t)
		st := box.awaitRelay(t, "a refusal of the other headscale's node", 60*time.Second, func(st relay.Status) string {
			if st.LastRefusal.Client != strangerKey {
				return "last refusal: " + st.LastRefusal.Client
			}
			return ""
		})
		t.Logf("refused %s: %s", strangerKey, st.LastRefusal.Reason)
	})

	t.Run("verify-client-url asks headscale's /verify", func(t *testing.T) {
		box.setVerify(t, url.Values{"relay.verify": {"url"}, "relay.verify_client_url": {hs.URL + "/verify"}})
		box.awaitRelay(t, "verify mode url", 10*time.Second, func(st relay.Status) string {
			if st.VerifyMode != "url" {
				return st.VerifyMode
			}
			return ""
		})
		if _, err := laptop.PingVia(t, phone, "DERP(home)", 60*time.Second); err != nil {
			t.Fatalf("headscale's own nodes: %v", err)
		}
		refusedFor := func(what, why string) {
			t.Helper()
			k, v, err := verdict(t, home)
			if v != relaytest.Refused {
				t.Errorf("%s: %v (%v); want refused", what, v, err)
				return
			}
			ref := box.relayStatus(t).LastRefusal
			if ref.Client != k || !strings.Contains(ref.Reason, why) {
				t.Errorf("%s: last refusal %+v; want %s refused because %q", what, ref, k, why)
			}
			t.Logf("%s: refused: %s", what, ref.Reason)
		}
		refusedFor("a key headscale does not know", "not allowed")

		hs.Stop(t)
		refusedFor("headscale down", "connection refused")
		box.setVerify(t, url.Values{"relay.verify": {"url"}, "relay.verify_client_url": {hs.URL + "/verify"}, "relay.verify_client_url_fail_open": {"on"}})
		if _, v, err := verdict(t, home); v != relaytest.Admitted {
			t.Errorf("with headscale down and fail-open chosen: %v (%v); want admitted", v, err)
		}
	})
}

// verdict connects a DERP client with a fresh key to the box's region,
// as the map says to, and returns the client's node key and the relay's
// verdict on it.
func verdict(t *testing.T, home *tailcfg.DERPRegion) (string, relaytest.Verdict, error) {
	t.Helper()
	var err error
	for range 10 { // the relay may be switching admission policy
		var c *relaytest.Client
		if c, err = relaytest.TryConnect(t, home); err == nil {
			v, err := relaytest.AwaitVerdict(c, 5*time.Second)
			c.Close()
			return c.Priv.Public().String(), v, err
		}
		time.Sleep(300 * time.Millisecond)
	}
	return "", relaytest.NoVerdict, err
}

// TestHeadscaleEmbeddedDERP runs headscale's own DERP server (region 999)
// beside the box's region: both reach the nodes intact, and the map
// checker, given the map headscale hands out, warns about 999.
func TestHeadscaleEmbeddedDERP(t *testing.T) {
	testenv.NeedLong(t)
	box := startHSBox(t, devbox.Build(t), nil)
	home := devbox.ReadMap(t, box.dir).Regions[900]
	hs := headscaletest.Start(t, headscaletest.Options{DERPPaths: []string{box.pathsFile(t, "")}, EmbeddedDERP: true})
	n := headscaletest.StartNode(t, "laptop", nodeEnv)
	n.Up(t, hs.URL, hs.PreAuthKey(t, hs.CreateUser(t, "family")))

	got := nodeRegion(t, n, 900, func(r *tailcfg.DERPRegion) string {
		if len(r.Nodes) != 1 || r.Nodes[0].CertName != home.Nodes[0].CertName {
			return "not the box's node"
		}
		return ""
	})
	emb := nodeRegion(t, n, 999, func(r *tailcfg.DERPRegion) string {
		if r.RegionCode != "headscale" {
			return "region code " + r.RegionCode
		}
		return ""
	})
	t.Logf("the node's map: 900 %q (%s:%d), 999 %q (%s:%d)", got.RegionCode, got.Nodes[0].HostName, got.Nodes[0].DERPPort,
		emb.RegionCode, emb.Nodes[0].HostName, emb.Nodes[0].DERPPort)

	m := &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{900: got, 999: emb}}
	j, err := derpmap.JSON(m)
	if err != nil {
		t.Fatal(err)
	}
	rep := derpmap.Check(j, home)
	var warned bool
	for _, f := range rep.Findings {
		if f.Severity == derpmap.SevError {
			t.Errorf("checker error on the map headscale hands out: %s", f.Msg)
		}
		warned = warned || f.Severity == derpmap.SevWarning && strings.Contains(f.Msg, "embedded DERP")
	}
	if !warned {
		t.Errorf("the checker did not warn about headscale's embedded region 999: %+v", rep.Findings)
	}
}

// TestHeadscaleDERPURLs points headscale's derp.urls at the URL the DERP
// map page offers, the box's /derpmap.json. With the self-signed
// certificate headscale cannot fetch it, and the page says so where it
// offers the URL; with a certificate headscale trusts (Pebble's, pasted
// in setup step 4), headscale loads the map and the nodes relay through
// the box.
func TestHeadscaleDERPURLs(t *testing.T) {
	testenv.NeedLong(t)
	box := startHSBox(t, devbox.Build(t), nil)

	t.Run("self-signed: headscale refuses it and the page steers to derp.paths", func(t *testing.T) {
		v := box.mapPage(t)
		if v.URLTrusted || !v.Pinned {
			t.Errorf("map page: url_trusted %v, pinned %v; want an untrusted URL and a pinned map", v.URLTrusted, v.Pinned)
		}
		_, html := box.ui.get("/derpmap")
		i := strings.Index(html, `id="headscale-urls"`)
		j := strings.Index(html, `id="headscale-paths"`)
		if i < 0 || j < i {
			t.Fatalf("the map page has no derp.urls section before the derp.paths one:\n%s", html)
		}
		contains(t, "the derp.urls section", html[i:j], "self-signed certificate fails that check", "refuses to start", "Use <code>derp.paths</code> below")
		_, err := headscaletest.TryStart(t, headscaletest.Options{DERPURLs: []string{v.URL}})
		if err == nil {
			t.Fatal("headscale started with the self-signed box in derp.urls; the page says it cannot")
		}
		if !strings.Contains(err.Error(), "x509") && !strings.Contains(err.Error(), "certificate") {
			t.Errorf("headscale failed for another reason than the certificate: %v", err)
		}
		t.Logf("headscale refused to start, as the page says: %s", lastLines(err.Error(), 3))
	})

	t.Run("a trusted certificate: headscale fetches the map and the nodes relay through it", func(t *testing.T) {
		ca := pebbletest.Start(t, pebbletest.Options{AlwaysValid: true})
		crt, key := ca.Issue(t, "localhost")
		resp, body := box.ui.submit("/setup", "/setup/certfiles", url.Values{"cert.pem": {string(crt)}, "cert.key": {string(key)}})
		mustStatus(t, "POST /setup/certfiles", resp, body, http.StatusSeeOther)
		resp, body = box.ui.submit("/setup", "/setup/cert", url.Values{"cert.mode": {"manual"}})
		mustStatus(t, "POST /setup/cert", resp, body, http.StatusSeeOther)
		var v mapView
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			if v = box.mapPage(t); v.URLTrusted {
				break
			}
		}
		if !v.URLTrusted || v.Pinned {
			t.Fatalf("map page after installing Pebble's certificate: url_trusted %v, pinned %v", v.URLTrusted, v.Pinned)
		}
		roots := filepath.Join(t.TempDir(), "pebble-root.pem")
		if err := os.WriteFile(roots, ca.RootPEM(), 0644); err != nil {
			t.Fatal(err)
		}
		trust := "SSL_CERT_FILE=" + roots
		hs := headscaletest.Start(t, headscaletest.Options{DERPURLs: []string{v.URL}, Env: []string{trust}})
		key2 := hs.PreAuthKey(t, hs.CreateUser(t, "family"))
		env := append([]string{trust}, nodeEnv...)
		laptop, phone := headscaletest.StartNode(t, "laptop", env), headscaletest.StartNode(t, "phone", env)
		laptop.Up(t, hs.URL, key2)
		phone.Up(t, hs.URL, key2)
		r := nodeRegion(t, laptop, 900, func(r *tailcfg.DERPRegion) string {
			if len(r.Nodes) != 1 || r.Nodes[0].CertName != "" {
				return "not the box's unpinned node"
			}
			return ""
		})
		if n := r.Nodes[0]; n.HostName != "localhost" || n.DERPPort != box.derpPort || n.STUNPort != box.stunPort {
			t.Errorf("region 900 from derp.urls: %+v", n)
		}
		out, err := laptop.PingVia(t, phone, "DERP(home)", 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("tailscale ping laptop → phone:\n%s", out)
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
