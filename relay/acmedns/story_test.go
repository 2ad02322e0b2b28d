package acmedns

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/internal/pebbletest"
	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/relaytest"
	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/tailcfg"
)

// acmeEnv is a CA and a DNS setup for one story.
type acmeEnv struct {
	host     string // e.g. "derp.rfc.homederp.test"
	pebble   *pebbletest.Server
	dns      certmagic.DNSProvider
	resolver string          // the DNS server that serves the zone
	txt      func() []string // the challenge TXT records the zone holds now
	validity time.Duration   // of Pebble's certificates
}

func (e acmeEnv) config(t testing.TB, dir string, fallback relay.CertSource, onChange func()) Config {
	return Config{
		Hostname:           e.host,
		CA:                 e.pebble.DirectoryURL,
		Dir:                filepath.Join(dir, "acme"),
		DNS:                e.dns,
		Fallback:           fallback,
		Resolvers:          []string{e.resolver},
		PropagationTimeout: 20 * time.Second,
		TrustedRoots:       e.pebble.APIRoots,
		Retry:              []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond},
		// Pebble's certificates live e.validity; renew at half-life.
		RenewalWindowRatio: 0.5,
		RenewCheckInterval: time.Second,
		CheckInterval:      100 * time.Millisecond,
		Logf:               testLogf(t),
		OnChange:           onChange,
	}
}

// runStory is the life of a box in acme-dns mode: the self-signed
// certificate serves (pinned in the map) until the CA's arrives; then the
// trusted certificate serves, the map drops the pin and clients that
// trust the CA connect; a renewal swaps the certificate under connected
// clients. With full, it goes on: a restart (second run) serves the
// stored certificate without asking the CA, and with the CA down the
// certificate finally expires and the pinned self-signed one comes back.
func runStory(t *testing.T, env acmeEnv, full bool) {
	dir := t.TempDir()
	fallback, err := relay.SelfSigned(filepath.Join(dir, "certs"), env.host, time.Now(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	var changes atomic.Int32
	cfg := env.config(t, dir, fallback, func() { changes.Add(1) })
	started := time.Now()
	m, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	tr := startRelay(t, dir, env.host, m)
	// keep makes a client that lives for the whole story, not just the
	// subtest that connects it.
	outer := t
	keep := func(t *testing.T, region *tailcfg.DERPRegion, roots *x509.CertPool) *relaytest.Client {
		t.Helper()
		c, err := connect(outer, region, roots)
		if err != nil {
			t.Fatalf("derphttp connect: %v", err)
		}
		return c
	}

	var pinnedClient *relaytest.Client
	t.Run("the self-signed certificate serves, pinned, until the CA's arrives", func(t *testing.T) {
		if got, want := tr.srv.PinnedCert(), fallback.Cert.Certificate[0]; !bytes.Equal(got, want) {
			t.Fatalf("PinnedCert: got %d bytes, want the self-signed certificate", len(got))
		}
		st := tr.srv.Status()
		if st.CertMode != "acme-dns" || !st.CertPinned || !strings.Contains(st.CertError, "serving the self-signed certificate meanwhile") {
			t.Errorf("relay status: mode %q, pinned %v, error %q; want acme-dns, pinned, saying the self-signed certificate serves meanwhile", st.CertMode, st.CertPinned, st.CertError)
		}
		region := tr.region()
		if got, want := region.Nodes[0].CertName, spec.Pin(fallback.Cert.Certificate[0]); got != want {
			t.Errorf("map CertName: got %q, want the pin %q", got, want)
		}
		pinnedClient = keep(t, region, nil)
	})

	var a, b *relaytest.Client
	t.Run("the CA's certificate serves and the map drops the pin", func(t *testing.T) {
		testwait.For(t, 60*time.Second, "a trusted certificate", func() error {
			if !m.Status().Trusted {
				return errors.New(m.CertInfo().Error)
			}
			return nil
		})
		st := m.Status()
		t.Logf("ISSUANCE (%s): %v from Start to a served trusted certificate; ACME order to certificate %v (Pebble + %T + DNS-01)", env.host, time.Since(started).Round(time.Millisecond), st.IssueDuration.Round(time.Millisecond), env.dns)

		chain, err := servedChain(tr.addr, env.host, env.pebble.Roots)
		if err != nil {
			t.Fatalf("the served certificate does not verify against Pebble's root: %v", err)
		}
		if root := chain[len(chain)-1]; !root.Equal(env.pebble.Root) {
			t.Errorf("chain ends at %q, want Pebble's root %q", root.Subject, env.pebble.Root.Subject)
		}
		if _, err := servedChain(tr.addr, env.host, nil); err == nil {
			t.Error("the served certificate verifies against the system roots; want Pebble's root only")
		}

		region := tr.region()
		if n := region.Nodes[0]; n.CertName != "" || n.InsecureForTests {
			t.Errorf("map node: CertName %q, InsecureForTests %v; want the plain form", n.CertName, n.InsecureForTests)
		}
		js, err := derpmap.JSON(&tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{region.RegionID: region}})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(js, []byte("CertName")) || bytes.Contains(js, []byte("InsecureForTests")) {
			t.Errorf("map JSON still pins or skips verification:\n%s", js)
		}
		rst := tr.srv.Status()
		if rst.CertMode != "acme-dns" || rst.CertError != "" || rst.CertPinned || !strings.HasPrefix(rst.CertIssuer, "Pebble") {
			t.Errorf("relay status: mode %q, error %q, pinned %v, issuer %q; want acme-dns, no error, not pinned, Pebble", rst.CertMode, rst.CertError, rst.CertPinned, rst.CertIssuer)
		}

		a, b = keep(t, region, env.pebble.Roots), keep(t, region, env.pebble.Roots)
		relaytest.Exchange(t, a, b)
		if _, err := connect(t, region, nil); err == nil {
			t.Error("a client that does not trust Pebble's root connected")
		}
		// The client that connected with the pin was not dropped.
		before, _ := connState(t, pinnedClient)
		relaytest.Exchange(t, pinnedClient, a)
		if after, _ := connState(t, pinnedClient); after != before {
			t.Errorf("the pinned client reconnected (%s, then %s)", before, after)
		}
		if changes.Load() == 0 {
			t.Error("OnChange was not called when the trusted certificate started to serve")
		}
		testwait.For(t, 20*time.Second, "the challenge TXT record removed", func() error {
			if txt := env.txt(); len(txt) > 0 {
				return fmt.Errorf("still there: %q", txt)
			}
			return nil
		})
	})
	if t.Failed() {
		return
	}

	t.Run("renewal swaps the certificate under connected clients", func(t *testing.T) {
		first, err := servedLeaf(tr.addr, env.host)
		if err != nil {
			t.Fatal(err)
		}
		aLocal, aLeaf := connState(t, a)
		if !aLeaf.Equal(first) {
			t.Fatal("client a does not have the served certificate")
		}
		testwait.For(t, env.validity+30*time.Second, "a renewed certificate served", func() error {
			leaf, err := servedLeaf(tr.addr, env.host)
			if err != nil {
				return err
			}
			if leaf.Equal(first) {
				return fmt.Errorf("still the first certificate (%s); %s", first.SerialNumber, m.CertInfo().Error)
			}
			return nil
		})
		if _, err := servedChain(tr.addr, env.host, env.pebble.Roots); err != nil {
			t.Errorf("the renewed certificate does not verify against Pebble's root: %v", err)
		}
		relaytest.Exchange(t, a, b)
		if local, leaf := connState(t, a); local != aLocal || !leaf.Equal(first) {
			t.Errorf("client a's connection: %s with serial %s, want the same connection %s with the first certificate %s", local, leaf.SerialNumber, aLocal, first.SerialNumber)
		}
		c := mustConnect(t, tr.region(), env.pebble.Roots)
		relaytest.Exchange(t, c, a)
		if st := m.Status(); st.Issued < 2 || st.RenewAttempts < 1 {
			t.Errorf("status: %d certificates, %d renewal attempts; want at least 2 and 1", st.Issued, st.RenewAttempts)
		}
		if st := tr.srv.Status(); st.CertError != "" || st.CertPinned {
			t.Errorf("relay status after renewal: error %q, pinned %v", st.CertError, st.CertPinned)
		}
	})
	if !full || t.Failed() {
		return
	}

	var m2 *Manager
	var changes2 atomic.Int32
	t.Run("a second run serves the stored certificate without asking the CA", func(t *testing.T) {
		stored, err := servedLeaf(tr.addr, env.host)
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		env.pebble.SetDown(true)
		orders := env.pebble.NewOrders()
		m2, err = Start(env.config(t, dir, fallback, func() { changes2.Add(1) }))
		if err != nil {
			t.Fatal(err)
		}
		outer.Cleanup(m2.Close)
		if !m2.Status().Trusted {
			t.Fatalf("right after Start: not serving the stored certificate: %s", m2.CertInfo().Error)
		}
		if err := tr.srv.SetCertSource(m2); err != nil {
			t.Fatal(err)
		}
		leaf, err := servedLeaf(tr.addr, env.host)
		if err != nil {
			t.Fatal(err)
		}
		if !leaf.Equal(stored) {
			t.Errorf("served serial %s, want the stored %s", leaf.SerialNumber, stored.SerialNumber)
		}
		if n := env.pebble.NewOrders(); n != orders {
			t.Errorf("new orders at the CA: %d, want none", n-orders)
		}
		relaytest.Exchange(t, a, b)
	})
	if t.Failed() {
		return
	}

	t.Run("with the CA down the certificate expires and the pin comes back", func(t *testing.T) {
		leaf, err := servedLeaf(tr.addr, env.host)
		if err != nil {
			t.Fatal(err)
		}
		testwait.For(t, time.Until(leaf.NotAfter)+10*time.Second, "the self-signed certificate served and pinned again", func() error {
			if !bytes.Equal(tr.srv.PinnedCert(), fallback.Cert.Certificate[0]) {
				return errors.New("not yet")
			}
			return nil
		})
		info := m2.CertInfo()
		if !strings.Contains(info.Error, "expired") || !strings.Contains(info.Error, "renewing it failed") || !strings.Contains(info.Error, "serving the self-signed certificate meanwhile") {
			t.Errorf("CertInfo: %q; want it to say the certificate expired, renewing failed, the self-signed one serves", info.Error)
		}
		if !strings.Contains(info.Error, "503") && !strings.Contains(info.Error, "down") {
			t.Errorf("CertInfo: %q; want the CA's own answer in it", info.Error)
		}
		testwait.For(t, 5*time.Second, "OnChange after the expiry", func() error {
			if changes2.Load() == 0 {
				return errors.New("not called")
			}
			return nil
		})
		region := tr.region()
		if got, want := region.Nodes[0].CertName, spec.Pin(fallback.Cert.Certificate[0]); got != want {
			t.Errorf("map CertName: got %q, want the pin again", got)
		}
		mustConnect(t, region, nil)
		st := m2.Status()
		t.Logf("renewal attempts while the CA was down: %d (certmagic backs off: 1 min before the second)", st.RenewAttempts)
		if st.RenewAttempts > 3 {
			t.Errorf("%d renewal attempts against a CA that is down within a minute; want at most 3", st.RenewAttempts)
		}
		js, _ := json.Marshal(st)
		t.Logf("status: %s", js)
	})
}
