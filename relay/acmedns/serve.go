package acmedns

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/homederp/homederp/relay"
)

// Mode is the relay.CertInfo mode of a Manager.
const Mode = "acme-dns"

// fallbackNote ends every status line that explains a fallback.
const fallbackNote = "serving the self-signed certificate meanwhile (the DERP map pins it)"

// GetCertificate serves the newest valid certificate certmagic holds for
// the hostname, whatever name the client asked for (DERP clients ask for
// the hostname; a client dialling by address sends none), or the fallback
// when there is none. It is called on every TLS handshake, so a renewed
// certificate is served from the next handshake on.
func (m *Manager) GetCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := m.trusted(); c != nil {
		return &c.Certificate, nil
	}
	return m.cfg.Fallback.GetCertificate(hi)
}

// trusted returns the valid certificate with the latest expiry from
// certmagic's cache, or nil. Around a renewal the cache can briefly hold
// both the old and the new certificate.
func (m *Manager) trusted() *certmagic.Certificate {
	var best *certmagic.Certificate
	now := time.Now()
	for _, c := range m.cache.AllMatchingCertificates(m.host) {
		if c.Leaf == nil || now.Before(c.Leaf.NotBefore) || now.After(c.Leaf.NotAfter) {
			continue
		}
		if best == nil || c.Leaf.NotAfter.After(best.Leaf.NotAfter) {
			best = &c
		}
	}
	return best
}

// expired returns the expiry of the newest certificate certmagic holds
// when none is valid any more, or the zero time.
func (m *Manager) expired() time.Time {
	var last time.Time
	for _, c := range m.cache.AllMatchingCertificates(m.host) {
		if c.Leaf != nil && c.Leaf.NotAfter.After(last) {
			last = c.Leaf.NotAfter
		}
	}
	return last
}

// CertInfo says, for the relay's status, whether the trusted certificate
// is served and, if not or if its renewal fails, why.
func (m *Manager) CertInfo() relay.CertInfo {
	c := m.trusted()
	expired := time.Time{}
	if c == nil {
		expired = m.expired()
	}
	m.mu.Lock()
	st := m.st
	m.mu.Unlock()
	// Let's Encrypt's staging certificates chain to a root no client
	// trusts: the map pins the staging certificate instead (a new pin
	// after each renewal), so that trying the setup with staging works.
	info := relay.CertInfo{Mode: Mode, Pin: c != nil && m.staging()}
	day := func(t time.Time) string { return t.UTC().Format(time.DateOnly) }
	at := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
	switch {
	case c != nil && st.renewErr != "":
		info.Error = fmt.Sprintf("renewing the certificate failed (%s): %s; the current one stays in use until it expires on %s, and renewal is retried", at(st.renewErrAt), st.renewErr, day(c.Leaf.NotAfter))
	case c != nil:
	case st.clockWait:
		info.Error = "waiting for a synchronized clock before asking the ACME CA for a certificate; " + fallbackNote
	case !expired.IsZero() && st.renewErr != "":
		info.Error = fmt.Sprintf("the trusted certificate expired on %s and renewing it failed (%s): %s; renewal is retried; %s", day(expired), at(st.renewErrAt), st.renewErr, fallbackNote)
	case !expired.IsZero():
		info.Error = fmt.Sprintf("the trusted certificate expired on %s; renewing it; %s", day(expired), fallbackNote)
	case st.lastErr != "" && !st.nextAttempt.IsZero():
		info.Error = fmt.Sprintf("no trusted certificate yet: attempt %d failed: %s; next attempt at %s; %s", st.attempts, st.lastErr, at(st.nextAttempt), fallbackNote)
	case st.lastErr != "":
		info.Error = fmt.Sprintf("no trusted certificate yet: %s; trying again now; %s", st.lastErr, fallbackNote)
	default:
		info.Error = fmt.Sprintf("asking %s for a certificate for %s (DNS-01 challenge); %s", m.caURL, m.host, fallbackNote)
	}
	return info
}

// staging reports whether the CA is Let's Encrypt's staging CA.
func (m *Manager) staging() bool { return m.caURL == certmagic.LetsEncryptStagingCA }

// issuerName is the short issuer name, as the relay shows it.
func issuerName(c *x509.Certificate) string {
	if len(c.Issuer.Organization) > 0 {
		return c.Issuer.Organization[0]
	}
	return c.Issuer.CommonName
}

// Interface guards.
var (
	_ relay.CertSource    = (*Manager)(nil)
	_ relay.CertDescriber = (*Manager)(nil)
)
