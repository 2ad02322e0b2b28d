package acmedns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/internal/testwait"
)

// offlineCA is a CA URL where nothing listens: these tests must never
// reach a CA, and would fail loudly if they tried.
const offlineCA = "https://127.0.0.1:1/dir"

// issue makes a CA-signed certificate for host (as an ACME CA would),
// valid from nb to na, as PEM.
func issue(t testing.TB, host string, nb, na time.Time) (crtPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA", Organization: []string{"Test CA"}},
		NotBefore: nb, NotAfter: na, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: nb, NotAfter: na, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// store puts a certificate where certmagic keeps the one it got from ca
// for host, and returns the certificate file's path.
func store(t testing.TB, dir, ca, host string, crtPEM, keyPEM []byte) string {
	t.Helper()
	iss := (&certmagic.ACMEIssuer{CA: ca}).IssuerKey()
	s := newStorage(dir)
	ctx := context.Background()
	for key, val := range map[string][]byte{
		certmagic.StorageKeys.SiteCert(iss, host):       crtPEM,
		certmagic.StorageKeys.SitePrivateKey(iss, host): keyPEM,
		certmagic.StorageKeys.SiteMeta(iss, host):       []byte(`{"sans":["` + host + `"]}`),
	} {
		if err := s.Store(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	return s.Filename(certmagic.StorageKeys.SiteCert(iss, host))
}

func offlineConfig(t testing.TB, dir, host string) Config {
	return Config{
		Hostname: host,
		CA:       offlineCA,
		Dir:      filepath.Join(dir, "acme"),
		DNS:      &rfc2136.Provider{Server: closedAddr(t)},
		Fallback: selfSigned(t, dir, host),
		Retry:    []time.Duration{time.Hour},
		Logf:     testLogf(t),
	}
}

func TestStoredCertificateServedAtOnce(t *testing.T) {
	dir := t.TempDir()
	const host = "derp.example.com"
	now := time.Now()
	crt, key := issue(t, host, now.Add(-time.Hour), now.Add(60*24*time.Hour))
	store(t, filepath.Join(dir, "acme"), offlineCA, host, crt, key)
	m, err := Start(offlineConfig(t, dir, host))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st := m.Status(); !st.Trusted || st.Issuer != "Test CA" {
		t.Fatalf("right after Start: trusted %v, issuer %q; want the stored certificate", st.Trusted, st.Issuer)
	}
	c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(crt)
	if !bytes.Equal(c.Certificate[0], b.Bytes) {
		t.Error("GetCertificate (any server name): not the stored certificate")
	}
	if info := m.CertInfo(); info.Mode != "acme-dns" || info.Error != "" {
		t.Errorf("CertInfo: %+v, want mode acme-dns and no error", info)
	}
}

// TestStagingCertificateIsPinned: a Let's Encrypt staging certificate
// verifies with no client's roots, so the relay pins it like the
// self-signed one.
func TestStagingCertificateIsPinned(t *testing.T) {
	dir := t.TempDir()
	const host = "derp.example.com"
	now := time.Now()
	crt, key := issue(t, host, now.Add(-time.Hour), now.Add(60*24*time.Hour))
	staging, _ := DirectoryURL("staging")
	store(t, filepath.Join(dir, "acme"), staging, host, crt, key)
	cfg := offlineConfig(t, dir, host)
	cfg.CA = "staging"
	m, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tr := startRelay(t, dir, host, m)
	b, _ := pem.Decode(crt)
	if got := tr.srv.PinnedCert(); !bytes.Equal(got, b.Bytes) {
		t.Errorf("PinnedCert: got %d bytes, want the staging certificate", len(got))
	}
	if st := tr.srv.Status(); !st.CertPinned || st.CertError != "" || st.CertIssuer != "Test CA" {
		t.Errorf("relay status: pinned %v, error %q, issuer %q; want pinned, no error, the stored certificate", st.CertPinned, st.CertError, st.CertIssuer)
	}
	if n := tr.region().Nodes[0]; n.CertName == "" {
		t.Error("the map does not pin the staging certificate")
	}
}

func TestExpiredStoredCertificateIsNotServed(t *testing.T) {
	dir := t.TempDir()
	const host = "derp.example.com"
	now := time.Now()
	crt, key := issue(t, host, now.Add(-100*24*time.Hour), now.Add(-10*24*time.Hour))
	store(t, filepath.Join(dir, "acme"), offlineCA, host, crt, key)
	cfg := offlineConfig(t, dir, host)
	m, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: host})
	if err != nil {
		t.Fatal(err)
	}
	fb, _ := cfg.Fallback.GetCertificate(nil)
	if !bytes.Equal(c.Certificate[0], fb.Certificate[0]) {
		t.Error("an expired certificate is served; want the fallback")
	}
	if info := m.CertInfo(); !strings.Contains(info.Error, "expired on") || !strings.Contains(info.Error, "serving the self-signed certificate meanwhile") {
		t.Errorf("CertInfo: %q; want it to say the certificate expired and the fallback serves", info.Error)
	}
}

// TestCorruptStorageIsShownNotReplaced: a certificate file that cannot be
// read is an error in the status, and nothing overwrites it.
func TestCorruptStorageIsShownNotReplaced(t *testing.T) {
	dir := t.TempDir()
	const host = "derp.example.com"
	now := time.Now()
	_, key := issue(t, host, now.Add(-time.Hour), now.Add(60*24*time.Hour))
	garbage := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
	path := store(t, filepath.Join(dir, "acme"), offlineCA, host, garbage, key)
	m, err := Start(offlineConfig(t, dir, host))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	testwait.For(t, 10*time.Second, "the storage problem in the status", func() error {
		if info := m.CertInfo(); !strings.Contains(info.Error, "certificate") || m.Status().LastError == "" {
			return errString(info.Error)
		}
		return nil
	})
	t.Logf("CertInfo: %s", m.CertInfo().Error)
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, garbage) {
		t.Errorf("the corrupt file was changed or removed (%v)", err)
	}
}

func TestStorageWritesPrivately(t *testing.T) {
	dir := t.TempDir()
	s := newStorage(filepath.Join(dir, "acme"))
	if err := s.Store(context.Background(), "certificates/ca/host/host.key", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		filepath.Join(dir, "acme", "certificates", "ca", "host", "host.key"): 0600,
		filepath.Join(dir, "acme", "certificates", "ca", "host"):             0700 | os.ModeDir,
		filepath.Join(dir, "acme"):                                           0700 | os.ModeDir,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	if b, err := s.Load(context.Background(), "certificates/ca/host/host.key"); err != nil || string(b) != "secret" {
		t.Errorf("Load: %q, %v", b, err)
	}
}

// BenchmarkGetCertificate is the per-handshake cost of picking the
// trusted certificate from certmagic's cache.
func BenchmarkGetCertificate(b *testing.B) {
	dir := b.TempDir()
	const host = "derp.example.com"
	now := time.Now()
	crt, key := issue(b, host, now.Add(-time.Hour), now.Add(60*24*time.Hour))
	store(b, filepath.Join(dir, "acme"), offlineCA, host, crt, key)
	m, err := Start(offlineConfig(b, dir, host))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	hi := &tls.ClientHelloInfo{ServerName: host}
	b.ReportAllocs()
	for b.Loop() {
		if c, err := m.GetCertificate(hi); err != nil || c == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetCertificateFallback is the cost while no trusted
// certificate exists.
func BenchmarkGetCertificateFallback(b *testing.B) {
	dir := b.TempDir()
	m, err := Start(offlineConfig(b, dir, "derp.example.com"))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	hi := &tls.ClientHelloInfo{ServerName: "derp.example.com"}
	b.ReportAllocs()
	for b.Loop() {
		if c, err := m.GetCertificate(hi); err != nil || c == nil {
			b.Fatal(err)
		}
	}
}
