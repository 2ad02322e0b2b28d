package main

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/relaytest"
	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/tailcfg"
)

func (a *app) region(t *testing.T) *tailcfg.DERPRegion {
	t.Helper()
	b, err := a.derpMapJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m tailcfg.DERPMap
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m.Regions[900]
}

// TestRelayFollowsConfig changes the configuration the way the web UI
// will and checks the relay follows: live where it can, with new
// listeners where it must.
func TestRelayFollowsConfig(t *testing.T) {
	stateDir := t.TempDir()
	a := startDev(t, options{stateDir: stateDir})
	save := func(modify func(*config.Config)) {
		t.Helper()
		a.save(t, modify)
	}
	first := a.relay.current().srv
	relaytest.ExpectVerdict(t, relaytest.Connect(t, a.region(t)), relaytest.Admitted, 10*time.Second)
	if st := a.relay.status(); st.CertMode != "self-signed" || !st.CertPinned || st.ClientsConnected != 1 {
		t.Fatalf("status: mode %q pinned %v clients %d", st.CertMode, st.CertPinned, st.ClientsConnected)
	}

	t.Run("manual certificate mode", func(t *testing.T) {
		save(func(c *config.Config) { c.Cert.Mode = config.CertManual })
		st := a.relay.status()
		if st.CertMode != "manual" || !strings.Contains(st.CertError, "localhost.crt") {
			t.Errorf("status before the files exist: mode %q, error %q", st.CertMode, st.CertError)
		}
		// The user puts a (self-signed) pair where the error says.
		crtPEM, keyPEM, err := relay.NewSelfSignedPEM("localhost", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		crt, key := relay.ManualCertPaths(filepath.Join(stateDir, "certs"), "localhost")
		writeFile(t, key, keyPEM)
		writeFile(t, crt, crtPEM)
		testwait.For(t, 3*manualCertPoll, "the manual pair served", func() error {
			if e := a.relay.status().CertError; e != "" {
				return errors.New(e)
			}
			return nil
		})
		if got, want := a.region(t).Nodes[0].CertName, spec.Pin(leafDER(t, crtPEM)); got != want {
			t.Errorf("map pin: got %s, want the manual certificate's %s", got, want)
		}
	})

	t.Run("verify URL", func(t *testing.T) {
		refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(tailcfg.DERPAdmitClientResponse{Allow: false})
		}))
		defer refuse.Close()
		save(func(c *config.Config) { c.Relay.VerifyClientURL = refuse.URL + "/verify" })
		c := relaytest.Connect(t, a.region(t))
		relaytest.ExpectVerdict(t, c, relaytest.Refused, 10*time.Second)
		if st := a.relay.status(); st.VerifyMode != "url" || st.Refused == 0 {
			t.Errorf("status: mode %q refused %d", st.VerifyMode, st.Refused)
		}
		save(func(c *config.Config) { c.Relay.VerifyClientURL = "" })
	})

	t.Run("mesh key problems are shown, the rest applies", func(t *testing.T) {
		save(func(c *config.Config) {
			c.Relay.MeshWith = []string{"localhost:1"}
			c.Relay.PerClientBytesPerSec = 500_000
		})
		st := a.relay.status()
		if !strings.Contains(st.MeshError, "no mesh key") || st.ClientRateBytesPerSec != 500_000 {
			t.Errorf("status: MeshError %q, rate %d; want the missing key and the rate applied", st.MeshError, st.ClientRateBytesPerSec)
		}
		a.setSecret(t, config.SecretMeshKey, "not-hex")
		if st := a.relay.status(); !strings.Contains(st.MeshError, "64 lowercase hex") {
			t.Errorf("MeshError with a bad key: %q", st.MeshError)
		}
		a.setSecret(t, config.SecretMeshKey, strings.Repeat("ab", 32))
		if st := a.relay.status(); st.MeshError != "" || len(st.Mesh) != 1 {
			t.Errorf("status with a good key: MeshError %q, Mesh %+v; want one link", st.MeshError, st.Mesh)
		}
	})

	if a.relay.current().srv != first {
		t.Error("the relay was restarted for changes that apply live")
	}

	t.Run("a new port means new listeners", func(t *testing.T) {
		port := devbox.FreePort(t)
		save(func(c *config.Config) { c.Relay.DERPPort = port })
		if a.relay.current().srv == first {
			t.Fatal("the relay kept its old listeners")
		}
		if got := a.region(t).Nodes[0].DERPPort; got != port {
			t.Errorf("map DERPPort: got %d, want %d", got, port)
		}
		relaytest.Exchange(t, relaytest.Connect(t, a.region(t)), relaytest.Connect(t, a.region(t)))
	})

	rec := httptest.NewRecorder()
	a.relay.metricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "homederp_relay_clients_connected") {
		t.Errorf("metrics handler output lacks the relay's metrics:\n%.500s", rec.Body.String())
	}
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0600); err != nil {
		t.Fatal(err)
	}
}

// leafDER is the DER of the first certificate in crtPEM.
func leafDER(t *testing.T, crtPEM []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(crtPEM)
	if b == nil {
		t.Fatal("no PEM certificate")
	}
	return b.Bytes
}

// TestRelayPortTaken saves a DERP port something else holds: the relay
// cannot start, says why in its status, tries again by itself, and comes
// back with the next configuration that works.
func TestRelayPortTaken(t *testing.T) {
	a := startDev(t, options{})
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	good := a.store.Config()
	a.save(t, func(c *config.Config) { c.Relay.DERPPort = taken.Addr().(*net.TCPAddr).Port })
	st := a.relay.status()
	if !strings.Contains(st.Error, "the relay is not running") || !strings.Contains(st.Error, "address already in use") {
		t.Errorf("status with the port taken: Error %q, want why the relay is down", st.Error)
	}
	if ap := a.relay.loop.state(); ap.Err == nil || ap.Gen != a.store.Generation() {
		t.Errorf("relay apply state: %+v, want the failure of generation %d", ap, a.store.Generation())
	}
	a.save(t, func(c *config.Config) { *c = good })
	if st := a.relay.status(); st.Error != "" {
		t.Errorf("status after a working configuration: Error %q", st.Error)
	}
	relaytest.Exchange(t, relaytest.Connect(t, a.region(t)), relaytest.Connect(t, a.region(t)))
}

// TestRelayDualStackInDev: in -dev the relay binds DERP and STUN on both
// loopback addresses, as the box binds both families.
func TestRelayDualStackInDev(t *testing.T) {
	a := startDev(t, options{})
	st := a.relay.status()
	c := a.store.Config()
	wantDERP := []string{fmt.Sprintf("127.0.0.1:%d", c.Relay.DERPPort), fmt.Sprintf("[::1]:%d", c.Relay.DERPPort)}
	wantSTUN := []string{fmt.Sprintf("127.0.0.1:%d", c.Relay.STUNPort), fmt.Sprintf("[::1]:%d", c.Relay.STUNPort)}
	if !slices.Equal(st.DERPAddrs, wantDERP) || !slices.Equal(st.STUNAddrs, wantSTUN) {
		t.Errorf("listeners: DERP %v, STUN %v; want %v and %v", st.DERPAddrs, st.STUNAddrs, wantDERP, wantSTUN)
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		r := *a.region(t)
		n := *r.Nodes[0]
		n.IPv4, n.IPv6 = "none", "none"
		if strings.Contains(ip, ":") {
			n.IPv6 = ip
		} else {
			n.IPv4 = ip
		}
		r.Nodes = []*tailcfg.DERPNode{&n}
		relaytest.ExpectVerdict(t, relaytest.Connect(t, &r), relaytest.Admitted, 10*time.Second)
	}
}

// TestRelayRestartsLeakNothing restarts the relay (a new port each time)
// 100 times: the goroutine count returns to where it was.
func TestRelayRestartsLeakNothing(t *testing.T) {
	a := startDev(t, options{})
	ports := []int{a.store.Config().Relay.DERPPort, devbox.FreePort(t)}
	a.save(t, func(c *config.Config) { c.Relay.DERPPort = ports[1] }) // warm up: every lazily started part runs
	runtime.GC()
	before := runtime.NumGoroutine()
	const restarts = 100
	start := time.Now()
	for i := range restarts {
		first := a.relay.current().srv
		a.save(t, func(c *config.Config) { c.Relay.DERPPort = ports[i%2] })
		if a.relay.current().srv == first || a.relay.loop.state().Err != nil {
			t.Fatalf("restart %d: relay %p (was %p), apply error %v", i, a.relay.current().srv, first, a.relay.loop.state().Err)
		}
	}
	took := time.Since(start)
	var after int
	testwait.For(t, 10*time.Second, "goroutines back to the start", func() error {
		after = runtime.NumGoroutine()
		if after > before+2 {
			return fmt.Errorf("%d goroutines after %d restarts, %d before", after, restarts, before)
		}
		return nil
	})
	t.Logf("RESTARTS: %d relay restarts in %v; goroutines %d before, %d after", restarts, took.Round(time.Millisecond), before, after)
}

// TestSavePortsSaysWhatTheRelayDid saves the ports through the web UI's
// form: the answer reports the relay's apply of that very
// configuration, a port that cannot be bound included.
func TestSavePortsSaysWhatTheRelayDid(t *testing.T) {
	a := startDev(t, options{})
	w := newWebClient(t, a.webui.url(), a.webui.password)
	stun := a.store.Config().Relay.STUNPort
	ports := func(derp int) url.Values {
		return url.Values{"relay.derp_port": {strconv.Itoa(derp)}, "relay.stun_port": {strconv.Itoa(stun)}}
	}

	free := devbox.FreePort(t)
	if got, want := w.submit("/setup/ports", "ports", ports(free)), fmt.Sprintf("the relay now serves DERP on TCP %d", free); !strings.Contains(got, want) {
		t.Errorf("saving free ports: got %q, want it to contain %q", got, want)
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	got := w.submit("/setup/ports", "ports", ports(port))
	for _, want := range []string{fmt.Sprintf("Saved the ports: TCP %d", port), "the relay could not start on them", "address already in use"} {
		if !strings.Contains(got, want) {
			t.Errorf("saving a taken port: got %q, want it to contain %q", got, want)
		}
	}
}
