package relay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/homederp/homederp/internal/statefile"
)

// SelfSignedLifetime is how long a self-signed certificate is valid.
// Clients pin it by hash (the map's "CertName": "sha256-raw:…"), so there
// is no CA lifetime limit to respect, and every new certificate means the
// user must paste a new map: make it last.
const SelfSignedLifetime = 20 * 365 * 24 * time.Hour

// LoadOrCreateSelfSigned returns the self-signed certificate for hostname
// kept in dir as self-signed-<hostname>.crt/.key, creating an ECDSA P-256
// one on first use. A stored certificate that does not cover hostname or
// has expired is replaced. now is the clock (gokrazy boards without an RTC
// start in 1970, so the caller waits for a synchronized clock first).
//
// The pairs of other hostnames in dir are removed: a box serves one name,
// and every name a user tried during setup would otherwise leave a key
// behind in /perm.
func LoadOrCreateSelfSigned(dir, hostname string, now time.Time) (*tls.Certificate, error) {
	name := "self-signed-" + safeHostname(hostname)
	crtPath := filepath.Join(dir, name+".crt")
	keyPath := filepath.Join(dir, name+".key")
	cert, err := tls.LoadX509KeyPair(crtPath, keyPath)
	if err == nil {
		leaf := cert.Leaf
		if leaf.VerifyHostname(hostname) == nil && now.Before(leaf.NotAfter) && !now.Before(leaf.NotBefore) {
			removeOtherSelfSigned(dir, name)
			return &cert, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading self-signed certificate: %w", err)
	}

	if err := os.MkdirAll(dir, 0700); err != nil {
		return nil, err
	}
	crtPEM, keyPEM, err := newSelfSigned(hostname, now)
	if err != nil {
		return nil, err
	}
	// The key goes first: a crash between the two writes leaves a new
	// key with the old certificate, which fails to load as a pair and is
	// then made anew, rather than a certificate nobody has the key of.
	if err := statefile.Write(keyPath, keyPEM, 0600); err != nil {
		return nil, err
	}
	if err := statefile.Write(crtPath, crtPEM, 0644); err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(crtPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	removeOtherSelfSigned(dir, name)
	return &c, nil
}

// removeOtherSelfSigned deletes the self-signed pairs in dir other than
// keep (e.g. "self-signed-derp.example.com"). Only files named like
// LoadOrCreateSelfSigned names them are touched: manual certificates
// (<hostname>.crt) share the directory. It is best effort: a pair that
// cannot be removed costs a few hundred bytes and must never stop the
// relay from serving, and the next start tries again.
func removeOtherSelfSigned(dir, keep string) {
	for _, ext := range []string{".crt", ".key"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "self-signed-*"+ext))
		for _, p := range paths {
			if filepath.Base(p) != keep+ext {
				os.Remove(p)
			}
		}
	}
}

func newSelfSigned(hostname string, now time.Time) (crtPEM, keyPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"homederp self-signed"}},
		NotBefore:             now.Add(-time.Hour), // tolerate a client clock a little behind
		NotAfter:              now.Add(SelfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(hostname); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{hostname}
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, nil, fmt.Errorf("creating certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// safeHostname keeps the characters derper keeps in certificate file names.
func safeHostname(h string) string {
	b := []byte(h)
	out := b[:0]
	for _, c := range b {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' {
			out = append(out, c)
		}
	}
	return string(out)
}
