package pebbletest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// Issue obtains a certificate for names from a Pebble started with
// AlwaysValid, through the ACME protocol as any client would, and returns
// its chain (leaf first) and key in PEM. Tests use it for a server that
// must present a certificate its clients trust through RootPEM, such as
// nginx in front of the relay, or the relay in manual mode.
func (s *Server) Issue(t testing.TB, names ...string) (chainPEM, keyPEM []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.APIRoots}}}
	defer hc.CloseIdleConnections()
	c := acmez.Client{
		Client: &acme.Client{Directory: s.DirectoryURL, HTTPClient: hc},
		// AlwaysValid: Pebble validates nothing, so presenting is a no-op.
		ChallengeSolvers: map[string]acmez.Solver{acme.ChallengeTypeDNS01: nopSolver{}},
	}
	accountKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	account, err := c.NewAccount(ctx, acme.Account{TermsOfServiceAgreed: true, PrivateKey: accountKey})
	if err != nil {
		t.Fatalf("pebbletest: new account: %v", err)
	}
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := c.ObtainCertificateForSANs(ctx, account, certKey, names)
	if err != nil {
		t.Fatalf("pebbletest: issuing a certificate for %v (Start with AlwaysValid?): %v", names, err)
	}
	der, err := x509.MarshalECPrivateKey(certKey)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0].ChainPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// RootPEM is Pebble's issuing root in PEM, e.g. for a client's
// SSL_CERT_FILE.
func (s *Server) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Root.Raw})
}

type nopSolver struct{}

func (nopSolver) Present(context.Context, acme.Challenge) error { return nil }
func (nopSolver) CleanUp(context.Context, acme.Challenge) error { return nil }
