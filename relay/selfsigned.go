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
	"tailscale.com/types/logger"
)

// SelfSignedLifetime is how long a self-signed certificate is valid.
// Clients pin it by hash (the map's "CertName": "sha256-raw:…"), so there
// is no CA lifetime limit to respect, and every new certificate means the
// user must paste a new map: make it last.
const SelfSignedLifetime = 20 * 365 * 24 * time.Hour

// ClockSet reports whether now comes from a set clock. Boards without a
// real-time clock (every Raspberry Pi) start in 1970 and keep that time
// until NTP answers; gokrazy's WaitForClock draws the line at 1971.
func ClockSet(now time.Time) bool {
	return now.After(time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC))
}

// LoadOrCreateSelfSigned returns the self-signed certificate for hostname
// kept in dir as self-signed-<hostname>.pem, creating an ECDSA P-256 one
// on first use. The certificate and its key live in that one file (mode
// 0600), written atomically: no crash can separate them. A stored
// certificate that does not cover hostname or has expired is replaced.
// A stored pair that cannot be used (a damaged file; or the two files of
// older versions, which wrote the key and then the certificate, left
// mismatched by a crash between the writes) is replaced by a new one, and
// logf says so: the new certificate changes the DERP map's pin. A good
// pair of an older version is moved into the one file as it is. logf may
// be nil.
//
// now is the clock, which need not be set to serve a stored certificate:
// clients check it against their own clocks (and its hash against the
// map's pin). A stored certificate the clock is behind is kept, since it
// is the one every map pins. Only a new certificate needs the time, so
// with the clock unset (ClockSet) and no usable one stored, this fails.
//
// The pairs of other hostnames in dir are removed: a box serves one name,
// and every name a user tried during setup would otherwise leave a key
// behind in /perm.
func LoadOrCreateSelfSigned(dir, hostname string, now time.Time, logf logger.Logf) (*tls.Certificate, error) {
	if logf == nil {
		logf = logger.Discard
	}
	name := "self-signed-" + safeHostname(hostname)
	path := filepath.Join(dir, name+".pem")
	pairPEM, err := os.ReadFile(path)
	from := path
	if errors.Is(err, fs.ErrNotExist) {
		pairPEM, from, err = readLegacyPair(dir, name)
	}
	var why string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		why = "none was stored"
	case err != nil:
		return nil, fmt.Errorf("reading the self-signed certificate: %w", err)
	default:
		cert, err := tls.X509KeyPair(pairPEM, pairPEM)
		switch {
		case err != nil:
			logf("relay: the stored self-signed certificate (%s) could not be used (%v); making a new one: paste the new DERP map where you use it, its pin changes", from, err)
			if from == path {
				// Kept for a look, never deleted.
				os.Rename(path, fmt.Sprintf("%s.broken-%s", path, now.UTC().Format("20060102T150405Z")))
			}
			why = "the stored one could not be used"
		case cert.Leaf.VerifyHostname(hostname) != nil:
			why = "the stored one is not for " + hostname
		case !now.Before(cert.Leaf.NotAfter):
			why = "the stored one has expired"
		default:
			if from != path {
				if err := adoptLegacyPair(dir, name, path, pairPEM); err != nil {
					return nil, err
				}
			}
			removeOtherSelfSigned(dir, name)
			return &cert, nil
		}
	}

	if !ClockSet(now) {
		return nil, fmt.Errorf("the clock is not set yet (it says %s): a certificate made now would not be valid; waiting for NTP (%s)", now.UTC().Format(time.DateOnly), why)
	}
	if err := os.MkdirAll(dir, 0700); err != nil {
		return nil, err
	}
	crtPEM, keyPEM, err := NewSelfSignedPEM(hostname, now)
	if err != nil {
		return nil, err
	}
	pairPEM = append(crtPEM, keyPEM...)
	if err := statefile.Write(path, pairPEM, 0600); err != nil {
		return nil, err
	}
	removeLegacyPair(dir, name)
	c, err := tls.X509KeyPair(pairPEM, pairPEM)
	if err != nil {
		return nil, err
	}
	logf("relay: made a new self-signed certificate for %s (%s), valid until %s", hostname, why, c.Leaf.NotAfter.UTC().Format(time.DateOnly))
	removeOtherSelfSigned(dir, name)
	return &c, nil
}

// removeOtherSelfSigned deletes the self-signed pairs in dir other than
// keep (e.g. "self-signed-derp.example.com"), in this version's one file
// and in the two files of older versions. Only files named like
// LoadOrCreateSelfSigned names them are touched: manual certificates
// (<hostname>.crt) share the directory, and a damaged pair set aside
// (.pem.broken-…) stays for a look. It is best effort: a pair that
// cannot be removed costs a few hundred bytes and must never stop the
// relay from serving, and the next start tries again.
func removeOtherSelfSigned(dir, keep string) {
	for _, ext := range []string{".pem", ".crt", ".key"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "self-signed-*"+ext))
		for _, p := range paths {
			if filepath.Base(p) != keep+ext {
				os.Remove(p)
			}
		}
	}
}

// readLegacyPair reads the .crt and .key files older versions wrote, as
// one PEM text; an error wrapping fs.ErrNotExist when there are none.
func readLegacyPair(dir, name string) (pairPEM []byte, from string, err error) {
	crt, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		return nil, "", err
	}
	key, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if errors.Is(err, fs.ErrNotExist) {
		// A certificate without its key: as good as none.
		return crt, filepath.Join(dir, name+".{crt,key}"), nil
	}
	if err != nil {
		return nil, "", err
	}
	return append(crt, key...), filepath.Join(dir, name+".{crt,key}"), nil
}

// adoptLegacyPair moves a good pair of an older version into the one
// file, keeping its certificate (and so the map's pin).
func adoptLegacyPair(dir, name, path string, pairPEM []byte) error {
	if err := statefile.Write(path, pairPEM, 0600); err != nil {
		return err
	}
	removeLegacyPair(dir, name)
	return nil
}

// removeLegacyPair removes the two files of older versions, once the one
// file holds the pair.
func removeLegacyPair(dir, name string) {
	os.Remove(filepath.Join(dir, name+".crt"))
	os.Remove(filepath.Join(dir, name+".key"))
}

// NewSelfSignedPEM makes a self-signed ECDSA P-256 certificate for
// hostname (a DNS name or an IP address) the way the relay makes its own,
// valid for SelfSignedLifetime from now, and returns it and its key as
// PEM: for a manual pair, or another server in a test or benchmark.
func NewSelfSignedPEM(hostname string, now time.Time) (crtPEM, keyPEM []byte, err error) {
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
