package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// testRootPEM is a throwaway CA certificate, as a private ACME CA's
// root_ca.crt would be.
func testRootPEM(t *testing.T, name string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestParseACMECARoots(t *testing.T) {
	a, b := testRootPEM(t, "step-ca root"), testRootPEM(t, "step-ca root 2")
	for _, tt := range []struct {
		name  string
		in    string
		n     int    // certificates parsed; 0: an error
		error string // substring of the error
	}{
		{"one root", a, 1, ""},
		{"two roots with blank lines", "\n" + a + "\n\n" + b + "\n", 2, ""},
		{"empty", " \n", 0, "no certificate"},
		{"not PEM", "MIIB...", 0, "not PEM"},
		{"cut short", a[:len(a)/2], 0, "not PEM"},
		{"junk after a root", a + "garbage", 0, "not PEM"},
		{"a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0, `"PRIVATE KEY" block`},
		{"a broken certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0, "certificate 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := ParseACMECARoots(tt.in)
			switch {
			case tt.n > 0 && err != nil:
				t.Fatalf("ParseACMECARoots: %v", err)
			case tt.n > 0 && len(certs) != tt.n:
				t.Errorf("ParseACMECARoots: got %d certificates, want %d", len(certs), tt.n)
			case tt.n == 0 && (err == nil || !strings.Contains(err.Error(), tt.error)):
				t.Errorf("ParseACMECARoots: got error %v, want one containing %q", err, tt.error)
			}
		})
	}
}

func TestValidateACMECARoots(t *testing.T) {
	root := testRootPEM(t, "step-ca root")
	for _, tt := range []struct {
		name, ca, roots string
		msg             string // substring of the cert.acme_ca_roots error; "" = none
	}{
		{"a private CA's root", "https://ca.example.com:9000/acme/acme/directory", root, ""},
		{"none", "https://ca.example.com/directory", "", ""},
		{"for Let's Encrypt", "", root, "only for a private ACME CA"},
		{"for staging", "staging", root, "only for a private ACME CA"},
		{"broken", "https://ca.example.com/directory", root[:60], "root certificates: not PEM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			c.Cert.ACMECA, c.Cert.ACMECARoots = tt.ca, tt.roots
			var got string
			if errs, ok := c.Validate().(Errors); ok {
				got = strings.Join(errs.For("cert.acme_ca_roots"), "\n")
			}
			if tt.msg == "" && got != "" || !strings.Contains(got, tt.msg) {
				t.Errorf("Validate(acme_ca %q): cert.acme_ca_roots: got %q, want %q", tt.ca, got, tt.msg)
			}
		})
	}
}
