package relay

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/homederp/homederp/internal/usermsg"
	"tailscale.com/types/logger"
)

// CertSource supplies the relay's TLS certificate. The relay asks on
// every handshake, so a source can change its certificate (a renewal, a
// new manual pair) and the relay can switch sources (SetCertSource)
// without dropping connected clients: a TLS session keeps the
// certificate it started with.
//
// Three sources exist: StaticCert (the self-signed certificate),
// ManualCerts (<hostname>.crt/.key in a directory, reloaded when they
// change) and, from the ACME DNS-01 work, certmagic, whose
// (*certmagic.Config).GetCertificate has this very signature. A source
// may also implement CertDescriber so the status page can say where its
// certificate comes from and what went wrong.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// CertDescriber is implemented by a CertSource that can describe itself.
type CertDescriber interface {
	CertInfo() CertInfo
}

// CertInfo describes a certificate source for Status.
type CertInfo struct {
	Mode string // "self-signed", "manual" or "acme-dns"
	// Error says, in plain words, why the certificate the user wants is
	// not the one being served (the previous one stays in use), e.g.
	// "derp.example.com.crt and .key do not belong together"; "" if fine.
	Error string
	// Msg is Error's sentence, for the web UI's catalogues; zero if it
	// has none.
	Msg usermsg.Msg
	// Pin says clients cannot verify the served certificate through a CA
	// they trust although it is not self-signed (a Let's Encrypt staging
	// certificate), so the DERP map must pin it too.
	Pin bool
}

// StaticCert is a CertSource that always returns the same certificate,
// such as the self-signed one.
type StaticCert struct {
	Cert *tls.Certificate
	Mode string // shown in Status, e.g. "self-signed"
}

func (s StaticCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.Cert, nil
}

func (s StaticCert) CertInfo() CertInfo { return CertInfo{Mode: s.Mode} }

// certHolder lets an interface value live in an atomic.Pointer.
type certHolder struct{ src CertSource }

// SetCertSource makes the relay serve certificates from src from the next
// TLS handshake on. Connected clients are not disturbed.
func (s *Server) SetCertSource(src CertSource) error {
	if src == nil {
		return errors.New("relay: nil certificate source; TLS is always on")
	}
	s.certs.Store(&certHolder{src})
	return nil
}

// CertSource returns the certificate source in use.
func (s *Server) CertSource() CertSource { return s.certs.Load().src }

func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: s.getCertificate,
		NextProtos:     []string{"http/1.1"},
		MinVersion:     tls.VersionTLS12,
	}
}

// getCertificate asks the current source and appends the current
// derpserver's meta certificate, as derpserver's
// ModifyTLSConfigToAddMetaCert does for a fixed server: clients read the
// server's key from it and save a round trip.
func (s *Server) getCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, err := s.certs.Load().src.GetCertificate(hi)
	if err != nil || c == nil {
		return c, err
	}
	cp := *c
	cp.Certificate = append(slices.Clip(c.Certificate), s.gen.Load().derp.MetaCert())
	return &cp, nil
}

// Certificate returns the certificate a client dialling the relay's
// hostname gets now, with its parsed leaf.
func (s *Server) Certificate() (*tls.Certificate, *x509.Certificate, error) {
	hi := &tls.ClientHelloInfo{}
	if net.ParseIP(s.cfg.Hostname) == nil {
		hi.ServerName = s.cfg.Hostname
	}
	c, err := s.certs.Load().src.GetCertificate(hi)
	if err != nil {
		return nil, nil, err
	}
	if c == nil {
		return nil, nil, errors.New("no certificate")
	}
	leaf, err := Leaf(c)
	if err != nil {
		return nil, nil, err
	}
	return c, leaf, nil
}

// PinnedCert returns the DER of the served certificate when clients must
// pin it (the DERP map's "CertName": "sha256-raw:<hex>"), or nil when
// clients can verify it through a CA. A self-signed certificate (issuer
// equals subject, as tlsdial judges it) is pinned whatever its source,
// so a self-signed manual pair works too; so is any certificate whose
// source says so (CertInfo.Pin).
func (s *Server) PinnedCert() []byte {
	_, leaf, err := s.Certificate()
	if err != nil || !IsSelfSigned(leaf) && !s.sourcePins() {
		return nil
	}
	return leaf.Raw
}

// sourcePins reports whether the certificate source asks for its
// certificate to be pinned (CertInfo.Pin).
func (s *Server) sourcePins() bool {
	d, ok := s.CertSource().(CertDescriber)
	return ok && d.CertInfo().Pin
}

// IsSelfSigned reports whether clients cannot verify c through a CA and
// must pin it.
func IsSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject)
}

// Leaf returns the parsed leaf of a certificate, for pinning it in the map.
func Leaf(c *tls.Certificate) (*x509.Certificate, error) {
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	if len(c.Certificate) == 0 {
		return nil, errors.New("empty certificate")
	}
	return x509.ParseCertificate(c.Certificate[0])
}

// checkLeaf says in plain words why leaf cannot serve hostname at now.
func checkLeaf(leaf *x509.Certificate, hostname string, now time.Time) error {
	if err := leaf.VerifyHostname(hostname); err != nil {
		return fmt.Errorf("the certificate is not for %s (it names %s)", hostname, certNames(leaf))
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("the certificate expired on %s", leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("the certificate is not valid before %s (is the clock right?)", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

func certNames(c *x509.Certificate) string {
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no host names"
	}
	return fmt.Sprintf("%q", names)
}

// issuerName is the short issuer shown in Status: the organization
// ("Let's Encrypt", "(STAGING) Let's Encrypt", "homederp self-signed") or
// else the common name.
func issuerName(c *x509.Certificate) string {
	if len(c.Issuer.Organization) > 0 {
		return c.Issuer.Organization[0]
	}
	return c.Issuer.CommonName
}

// SelfSigned returns the source for the self-signed certificate of
// hostname kept in dir (see LoadOrCreateSelfSigned).
func SelfSigned(dir, hostname string, now time.Time, logf logger.Logf) (StaticCert, error) {
	c, err := LoadOrCreateSelfSigned(dir, hostname, now, logf)
	if err != nil {
		return StaticCert{}, err
	}
	return StaticCert{Cert: c, Mode: "self-signed"}, nil
}
