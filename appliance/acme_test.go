package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/internal/bindtest"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/pebbletest"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay/acmedns"
	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// quietAfter forwards to t.Logf until the test ends.
func quietAfter(t *testing.T) func(string, ...any) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return func(f string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(f, args...)
		}
	}
}

// TestACMEDNSMode is the appliance in certificate mode acme-dns with an
// RFC 2136 provider: a real BIND 9 holds the zone, Pebble is the CA. The
// relay serves the pinned self-signed certificate until Pebble's arrives;
// then derpmap.json drops the pin by itself, a client trusting Pebble's
// root connects with the map as emitted, and going back to self-signed
// brings the pin back.
func TestACMEDNSMode(t *testing.T) {
	testenv.NeedLong(t)
	const zone, host = "appl.homederp.test", "derp.appl.homederp.test"
	bind := bindtest.Start(t, bindtest.Options{Zone: zone + "."})
	logf := quietAfter(t)
	ca := pebbletest.Start(t, pebbletest.Options{DNSServer: bind.Addr.String(), Logf: logf})

	dir := t.TempDir()
	// ddns runs too (same provider): keep its detection on loopback.
	h, _ := loopbackDDNS(t, bind.Addr, "203.0.113.9")
	h.acme = func(c *acmedns.Config) {
		// The CA's API is trusted through cert.acme_ca_roots, as a
		// private CA's is on the box.
		c.Retry = []time.Duration{300 * time.Millisecond}
		c.PropagationTimeout = 20 * time.Second
		c.CheckInterval = 100 * time.Millisecond
	}
	a, err := start(options{dev: true, stateDir: dir, derpPort: devbox.FreePort(t), stunPort: devbox.FreePort(t), webuiAddr: "127.0.0.1:0", hooks: h}, logf)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()

	a.setSecret(t, config.SecretTSIG, bind.Secret)
	saved := time.Now()
	a.save(t, func(c *config.Config) {
		c.Hostname = host
		c.DDNS.Provider = config.ProviderRFC2136
		c.DDNS.IPv6 = false
		c.DDNS.RFC2136 = config.RFC2136{Server: bind.Addr.String(), Zone: zone + ".", KeyName: bind.KeyName, KeyAlgorithm: bind.KeyAlgorithm}
		c.DDNS.Resolvers = []string{bind.Addr.String()}
		c.Cert.Mode = config.CertACMEDNS
		c.Cert.ACMECA = ca.DirectoryURL
		c.Cert.ACMECARoots = string(ca.APIRootPEM())
	})
	c := a.store.Config()
	mapFile := func() string {
		b, err := os.ReadFile(a.dmap.path())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("pinned self-signed meanwhile", func(t *testing.T) {
		a.awaitMap(t)
		st := a.relay.status()
		if st.CertMode != "acme-dns" || !st.CertPinned || !strings.Contains(st.CertError, "serving the self-signed certificate meanwhile") {
			t.Errorf("relay status: mode %q, pinned %v, error %q", st.CertMode, st.CertPinned, st.CertError)
		}
		if m := mapFile(); !strings.Contains(m, `"CertName": "sha256-raw:`) {
			t.Errorf("derpmap.json before the trusted certificate has no pin:\n%s", m)
		}
	})

	t.Run("the trusted certificate serves and derpmap.json drops the pin", func(t *testing.T) {
		testwait.For(t, 60*time.Second, "derpmap.json without the pin", func() error {
			if strings.Contains(mapFile(), "CertName") {
				return errors.New("it still has a CertName")
			}
			return nil
		})
		t.Logf("ISSUANCE (appliance): %v from saving the configuration to the plain map on disk", time.Since(saved).Round(time.Millisecond))
		if m := mapFile(); strings.Contains(m, "InsecureForTests") {
			t.Errorf("derpmap.json: %s", m)
		}
		st := a.relay.status()
		if st.CertMode != "acme-dns" || st.CertPinned || st.CertError != "" || !strings.HasPrefix(st.CertIssuer, "Pebble") {
			t.Errorf("relay status: mode %q, pinned %v, error %q, issuer %q", st.CertMode, st.CertPinned, st.CertError, st.CertIssuer)
		}
		var m tailcfg.DERPMap
		if err := json.Unmarshal([]byte(mapFile()), &m); err != nil {
			t.Fatal(err)
		}
		region := m.Regions[c.Region.ID]
		region.Nodes[0].IPv4 = "127.0.0.1" // the test has no DNS for the name
		region.Nodes[0].IPv6 = "none"
		cl := derphttp.NewRegionClient(key.NewNode(), logf, netmon.NewStatic(), func() *tailcfg.DERPRegion { return region })
		cl.TLSConfig = &tls.Config{RootCAs: ca.Roots}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cl.Connect(ctx); err != nil {
			t.Fatalf("a client trusting Pebble's root, with the emitted map: %v", err)
		}
		relaytest.ExpectVerdict(t, &relaytest.Client{Client: cl}, relaytest.Admitted, 10*time.Second)
		if fi, err := os.Stat(filepath.Join(dir, "acme")); err != nil || fi.Mode().Perm() != 0700 {
			t.Errorf("ACME storage directory: %v, %v; want 0700", fi.Mode(), err)
		}
	})

	t.Run("back to self-signed brings the pin back", func(t *testing.T) {
		a.save(t, func(c *config.Config) { c.Cert.Mode = config.CertSelfSigned })
		a.awaitMap(t)
		if m := mapFile(); !strings.Contains(m, `"CertName": "sha256-raw:`) {
			t.Errorf("derpmap.json in self-signed mode has no pin:\n%s", m)
		}
		if st := a.relay.status(); st.CertMode != "self-signed" || !st.CertPinned {
			t.Errorf("relay status: mode %q, pinned %v", st.CertMode, st.CertPinned)
		}
	})
}
