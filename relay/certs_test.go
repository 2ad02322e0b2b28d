package relay

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay/relaytest"
)

func TestManualCertPathsUseDerperNaming(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"derp.example.com", "derp.example.com"},
		{"192.0.2.7", "192.0.2.7"},
		{"2001:db8::1", "2001db81"},
		{"we!rd_host.example", "werdhost.example"},
	} {
		crt, key := ManualCertPaths("/c", tt.host)
		if crt != "/c/"+tt.want+".crt" || key != "/c/"+tt.want+".key" {
			t.Errorf("ManualCertPaths(%q): got %q, %q, want /c/%s.crt and .key", tt.host, crt, key, tt.want)
		}
	}
}

// TestManualCertReloadKeepsClients is the story of a user replacing the
// manual certificate while clients are connected.
func TestManualCertReloadKeepsClients(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "manual")
	const host = "localhost"
	ca := newTestCA(t)
	now := time.Now()
	crt1, key1 := ca.issue(t, host, now.Add(-time.Hour), now.Add(24*time.Hour))
	writePair(t, certDir, host, crt1, key1)

	m := NewManualCerts(certDir, host, nil, t.Logf, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx, 50*time.Millisecond)
	tr := startRelayWith(t, dir, relayOpts{certs: m})
	addr := tr.srv.DERPAddr().String()

	if got := tr.srv.PinnedCert(); got != nil {
		t.Errorf("PinnedCert of a CA-signed manual certificate: got %d bytes, want nil (clients verify it through the CA)", len(got))
	}
	if st := tr.srv.Status(); st.CertMode != "manual" || st.CertError != "" || st.CertIssuer != "homederp test CA" || st.CertPinned {
		t.Errorf("Status: mode %q, error %q, issuer %q, pinned %v; want manual, no error, the test CA, not pinned", st.CertMode, st.CertError, st.CertIssuer, st.CertPinned)
	}

	// The test's clients pin the certificate rather than trust the test CA.
	a := relaytest.Connect(t, pinned(tr.region, leafDER(t, crt1)))
	b := relaytest.Connect(t, pinned(tr.region, leafDER(t, crt1)))
	relaytest.Exchange(t, a, b)
	acceptsBefore := accepts(tr.srv)

	crt2, key2 := ca.issue(t, host, now.Add(-time.Hour), now.Add(48*time.Hour))
	t.Run("a new pair is picked up", func(t *testing.T) {
		writePair(t, certDir, host, crt2, key2)
		testwait.For(t, 10*time.Second, "serving the new certificate", func() error {
			got, err := servedLeaf(addr)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, leafDER(t, crt2)) {
				return errString("still the old certificate")
			}
			return nil
		})
		if _, err := relaytest.TryConnect(t, pinned(tr.region, leafDER(t, crt1))); err == nil {
			t.Error("a client pinning the old certificate connected after the reload")
		}
		c := relaytest.Connect(t, pinned(tr.region, leafDER(t, crt2)))
		relaytest.ExpectVerdict(t, c, relaytest.Admitted, 5*time.Second)
		if got := tr.srv.Status().CertNotAfter; !got.Equal(now.Add(48 * time.Hour).Truncate(time.Second)) {
			t.Errorf("CertNotAfter: got %v, want the new certificate's %v", got, now.Add(48*time.Hour))
		}
	})

	t.Run("connected clients were not dropped", func(t *testing.T) {
		relaytest.Exchange(t, a, b)
		// Exchange's clients reconnect silently if dropped; the server's
		// accept counter tells: only the new client of the subtest above
		// (and the rejected old-pin dial, which fails in TLS) arrived.
		if got := accepts(tr.srv) - acceptsBefore; got != 1 {
			t.Errorf("DERP connections accepted since the reload: got %d, want 1 (the new client); a and b must have kept theirs", got)
		}
	})

	t.Run("bad pairs are rejected and the good one stays", func(t *testing.T) {
		good, err := servedLeaf(addr)
		if err != nil {
			t.Fatal(err)
		}
		crtOther, keyOther := ca.issue(t, host, now.Add(-time.Hour), now.Add(24*time.Hour))
		crtWrongName, keyWrongName := ca.issue(t, "derp.example.com", now.Add(-time.Hour), now.Add(24*time.Hour))
		crtExpired, keyExpired := ca.issue(t, host, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
		for _, tt := range []struct {
			name     string
			crt, key []byte
			wantErr  string
		}{
			{"key of another certificate", crtOther, key1, "not a usable certificate and key pair"},
			{"not PEM", []byte("hello"), keyOther, "failed to find any PEM data in certificate input"},
			{"empty key", crtOther, []byte{}, "failed to find any PEM data in key input"},
			{"wrong host name", crtWrongName, keyWrongName, `not for localhost (it names ["derp.example.com"])`},
			{"expired", crtExpired, keyExpired, "expired on"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				// Start from the good pair, so the error seen below
				// is this case's.
				writePair(t, certDir, host, crt2, key2)
				testwait.For(t, 10*time.Second, "the good pair back", func() error {
					if e := tr.srv.Status().CertError; e != "" {
						return errString(e)
					}
					return nil
				})
				writePair(t, certDir, host, tt.crt, tt.key)
				testwait.For(t, 10*time.Second, "the error in Status", func() error {
					if e := tr.srv.Status().CertError; !strings.Contains(e, tt.wantErr) {
						return errString("CertError " + e)
					}
					return nil
				})
				if e := tr.srv.Status().CertError; !strings.Contains(e, "previous certificate stays in use") {
					t.Errorf("CertError %q does not say the previous certificate stays", e)
				}
				got, err := servedLeaf(addr)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, good) {
					t.Error("the relay stopped serving the last good certificate")
				}
			})
		}
		// Fixing the files clears the error.
		writePair(t, certDir, host, crtOther, keyOther)
		testwait.For(t, 10*time.Second, "the error to clear", func() error {
			if e := tr.srv.Status().CertError; e != "" {
				return errString(e)
			}
			return nil
		})
	})
}

func TestManualCertFallsBackUntilFilesExist(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "manual")
	ss, err := SelfSigned(filepath.Join(dir, "certs"), "localhost", time.Now(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManualCerts(certDir, "localhost", ss, t.Logf, nil)
	tr := startRelayWith(t, dir, relayOpts{certs: m})

	st := tr.srv.Status()
	if !strings.Contains(st.CertError, "localhost.crt") || !strings.Contains(st.CertError, "self-signed certificate meanwhile") {
		t.Errorf("CertError before the files exist: got %q, want where to put them and that the self-signed certificate is served", st.CertError)
	}
	if got := tr.srv.PinnedCert(); !bytes.Equal(got, ss.Cert.Certificate[0]) {
		t.Error("PinnedCert while falling back: want the self-signed certificate, which the map must pin")
	}
	relaytest.Exchange(t, relaytest.Connect(t, tr.region), relaytest.Connect(t, tr.region))

	ca := newTestCA(t)
	crt, key := ca.issue(t, "localhost", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	writePair(t, certDir, "localhost", crt, key)
	if err := m.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got, _ := servedLeaf(tr.srv.DERPAddr().String()); !bytes.Equal(got, leafDER(t, crt)) {
		t.Error("after Reload the relay does not serve the manual certificate")
	}
	if st := tr.srv.Status(); st.CertError != "" || st.CertPinned {
		t.Errorf("after Reload: CertError %q, pinned %v; want none, not pinned", st.CertError, st.CertPinned)
	}
}

// TestSetCertSourceKeepsClients switches from the self-signed
// certificate to a manual one, as a user changing the certificate mode
// does, under connected clients.
func TestSetCertSourceKeepsClients(t *testing.T) {
	dir := t.TempDir()
	tr := startRelay(t, dir)
	a := relaytest.Connect(t, tr.region)
	b := relaytest.Connect(t, tr.region)
	relaytest.Exchange(t, a, b)
	before := accepts(tr.srv)

	// A self-signed manual pair: the map must then pin it.
	other, err := LoadOrCreateSelfSigned(t.TempDir(), "localhost", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.srv.SetCertSource(StaticCert{Cert: other, Mode: "manual"}); err != nil {
		t.Fatal(err)
	}
	if got := tr.srv.PinnedCert(); !bytes.Equal(got, other.Certificate[0]) {
		t.Error("PinnedCert after the swap: want the new self-signed certificate")
	}
	if got, _ := servedLeaf(tr.srv.DERPAddr().String()); !bytes.Equal(got, other.Certificate[0]) {
		t.Error("the relay does not serve the new certificate")
	}
	relaytest.Exchange(t, a, b)
	if got := accepts(tr.srv) - before; got != 0 {
		t.Errorf("connections accepted during the swap: got %d, want 0 (a and b keep theirs)", got)
	}
	c := relaytest.Connect(t, pinned(tr.region, other.Certificate[0]))
	relaytest.Exchange(t, a, c)
	if err := tr.srv.SetCertSource(nil); err == nil {
		t.Error("SetCertSource(nil): got nil error; TLS must stay on")
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestInstallManualPair(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t)
	good, goodKey := ca.issue(t, "derp.example.com", now.Add(-time.Hour), now.Add(24*time.Hour))
	other, otherKey := ca.issue(t, "other.example.com", now.Add(-time.Hour), now.Add(24*time.Hour))
	expired, expiredKey := ca.issue(t, "derp.example.com", now.Add(-48*time.Hour), now.Add(-24*time.Hour))

	dir := t.TempDir()
	if _, err := InstallManualPair(dir, "derp.example.com", good, goodKey, now); err != nil {
		t.Fatalf("InstallManualPair(good pair): %v", err)
	}
	crt, key := ManualCertPaths(dir, "derp.example.com")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0600 {
		t.Errorf("key file: %v, %v; want mode 0600", fi, err)
	}
	m := NewManualCerts(dir, "derp.example.com", nil, t.Logf, nil)
	if err := m.Reload(); err != nil {
		t.Fatalf("the installed pair does not load: %v", err)
	}

	for _, tt := range []struct {
		name     string
		crt, key []byte
		want     string
	}{
		{"key of another certificate", good, otherKey, "not a usable certificate and key pair"},
		{"wrong name", other, otherKey, "not for derp.example.com"},
		{"expired", expired, expiredKey, "expired"},
		{"garbage", []byte("hello"), []byte("world"), "not a usable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := InstallManualPair(dir, "derp.example.com", tt.crt, tt.key, now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("InstallManualPair: got %v, want an error containing %q", err, tt.want)
			}
			if got, _ := os.ReadFile(crt); !bytes.Equal(got, good) {
				t.Error("a refused pair replaced the certificate on disk")
			}
			if got, _ := os.ReadFile(key); !bytes.Equal(got, goodKey) {
				t.Error("a refused pair replaced the key on disk")
			}
		})
	}
}
