package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	a, err := start(options{dev: true, stateDir: stateDir, derpPort: devbox.FreePort(t), stunPort: devbox.FreePort(t)}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	save := func(modify func(*config.Config)) {
		t.Helper()
		c := a.store.Config()
		modify(&c)
		if err := a.store.Save(c); err != nil {
			t.Fatal(err)
		}
	}
	first := a.relay.srv
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
		tmp := t.TempDir()
		other, err := relay.LoadOrCreateSelfSigned(tmp, "localhost", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		crt, key := relay.ManualCertPaths(filepath.Join(stateDir, "certs"), "localhost")
		copyFile(t, filepath.Join(tmp, "self-signed-localhost.key"), key)
		copyFile(t, filepath.Join(tmp, "self-signed-localhost.crt"), crt)
		testwait.For(t, 3*manualCertPoll, "the manual pair served", func() error {
			if e := a.relay.status().CertError; e != "" {
				return errors.New(e)
			}
			return nil
		})
		if got, want := a.region(t).Nodes[0].CertName, spec.Pin(other.Certificate[0]); got != want {
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
		if err := a.store.SetSecret(config.SecretMeshKey, "not-hex"); err != nil {
			t.Fatal(err)
		}
		if st := a.relay.status(); !strings.Contains(st.MeshError, "64 lowercase hex") {
			t.Errorf("MeshError with a bad key: %q", st.MeshError)
		}
		if err := a.store.SetSecret(config.SecretMeshKey, strings.Repeat("ab", 32)); err != nil {
			t.Fatal(err)
		}
		if st := a.relay.status(); st.MeshError != "" || len(st.Mesh) != 1 {
			t.Errorf("status with a good key: MeshError %q, Mesh %+v; want one link", st.MeshError, st.Mesh)
		}
	})

	if a.relay.srv != first {
		t.Error("the relay was restarted for changes that apply live")
	}

	t.Run("a new port means new listeners", func(t *testing.T) {
		port := devbox.FreePort(t)
		save(func(c *config.Config) { c.Relay.DERPPort = port })
		if a.relay.srv == first {
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

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0600); err != nil {
		t.Fatal(err)
	}
}

// TestRelayPortTaken saves a DERP port something else holds: the relay
// cannot start, says why in its status, and comes back with the next
// configuration that works.
func TestRelayPortTaken(t *testing.T) {
	a, err := start(options{dev: true, stateDir: t.TempDir(), derpPort: devbox.FreePort(t), stunPort: devbox.FreePort(t)}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	good := a.store.Config()
	c := good
	c.Relay.DERPPort = taken.Addr().(*net.TCPAddr).Port
	if err := a.store.Save(c); err != nil {
		t.Fatal(err)
	}
	st := a.relay.status()
	if !strings.Contains(st.Error, "the relay is not running") || !strings.Contains(st.Error, "address already in use") {
		t.Errorf("status with the port taken: Error %q, want why the relay is down", st.Error)
	}
	if err := a.store.Save(good); err != nil {
		t.Fatal(err)
	}
	if st := a.relay.status(); st.Error != "" {
		t.Errorf("status after a working configuration: Error %q", st.Error)
	}
	relaytest.Exchange(t, relaytest.Connect(t, a.region(t)), relaytest.Connect(t, a.region(t)))
}
