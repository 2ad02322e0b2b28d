package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

// fuzzNow is the clock of FuzzManualPair, inside the validity of its
// seeds (committed ones included), so a seed that parses stays valid.
var fuzzNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// FuzzManualPair feeds what a user may paste into the web UI's manual
// certificate form (or leave in the certificate directory) to
// parsePair, the check both paths use. Whatever the bytes, it must not
// panic, and a pair it accepts must really serve: a TLS handshake with a
// client that trusts the leaf and asks for the hostname succeeds, and
// InstallManualPair stores it so that ManualCerts serves the same leaf.
func FuzzManualPair(f *testing.F) {
	ca := newTestCA(f)
	crt, key := ca.issue(f, "derp.example.com", fuzzNow.Add(-time.Hour), fuzzNow.Add(24*time.Hour))
	f.Add(crt, key, "derp.example.com")
	f.Add(append(crt, ca.pem...), key, "derp.example.com")
	ipCrt, ipKey := ca.issue(f, "192.0.2.1", fuzzNow.Add(-time.Hour), fuzzNow.Add(24*time.Hour))
	f.Add(ipCrt, ipKey, "192.0.2.1")
	f.Add(crt, ipKey, "derp.example.com") // a key of another certificate
	f.Fuzz(func(t *testing.T, crtPEM, keyPEM []byte, host string) {
		if len(crtPEM) > maxPEMSize || len(keyPEM) > maxPEMSize {
			return // InstallManualPair refuses these before parsing
		}
		c, err := parsePair(crtPEM, keyPEM, host, fuzzNow)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("refused with an empty reason")
			}
			return
		}
		if c.Leaf == nil || !bytes.Equal(c.Leaf.Raw, c.Certificate[0]) {
			t.Fatal("accepted a pair without its leaf")
		}
		if err := serveOnce(c, c.Leaf, host); err != nil {
			t.Fatalf("accepted a pair that does not serve %q: %v", host, err)
		}
		dir := t.TempDir()
		leaf, err := InstallManualPair(dir, host, crtPEM, keyPEM, fuzzNow)
		if err != nil {
			t.Fatalf("parsePair accepted what InstallManualPair refuses: %v", err)
		}
		m := NewManualCerts(dir, host, nil, t.Logf, func() time.Time { return fuzzNow })
		if err := m.Reload(); err != nil {
			t.Fatalf("ManualCerts does not load what InstallManualPair stored: %v", err)
		}
		served, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: host})
		if err != nil || !bytes.Equal(served.Certificate[0], leaf.Raw) {
			t.Fatalf("ManualCerts serves another certificate than the one installed (%v)", err)
		}
	})
}

// serveOnce does a TLS handshake over an in-memory pipe: the server
// serves c, the client trusts leaf alone and verifies host, as a DERP
// client with a pinned certificate would.
func serveOnce(c *tls.Certificate, leaf *x509.Certificate, host string) error {
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		s := tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{*c}, Time: func() time.Time { return fuzzNow }})
		errc <- s.HandshakeContext(ctx)
	}()
	cl := tls.Client(cc, &tls.Config{
		ServerName: host,
		Time:       func() time.Time { return fuzzNow },
		// Trust the leaf itself, whatever its issuer: the check is that
		// the key serves and the names match, not the chain.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			got, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			if !got.Equal(leaf) {
				return errString("served another leaf")
			}
			return got.VerifyHostname(host)
		},
	})
	if err := cl.HandshakeContext(ctx); err != nil {
		cc.Close()
		<-errc
		return err
	}
	return <-errc
}
