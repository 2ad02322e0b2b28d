package acmedns

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/homederp/homederp/internal/usermsg"
	"github.com/homederp/homederp/relay"
)

// Mode is the relay.CertInfo mode of a Manager.
const Mode = "acme-dns"

// fallback ends every status line that explains a fallback.
var fallback = usermsg.Errorf("relaystate.acme_fallback", "serving the self-signed certificate meanwhile (the DERP map pins it)", nil)

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
	say := func(id, text string, args map[string]any) {
		if args == nil {
			args = map[string]any{}
		}
		args["Fallback"] = fallback
		info.Error, info.Msg = usermsg.Say(id, text, args)
	}
	// The CA's and certmagic's own words (Err) stay as they are.
	switch {
	case c != nil && st.renewErr != "":
		info.Error, info.Msg = usermsg.Say("relaystate.acme_renew_failed", "renewing the certificate failed ({{.At}}): {{.Err}}; the current one stays in use until it expires on {{.Expires}}, and renewal is retried",
			map[string]any{"At": at(st.renewErrAt), "Err": st.renewErr, "Expires": day(c.Leaf.NotAfter)})
	case c != nil:
	case st.clockWait:
		say("relaystate.acme_clock", "waiting for a synchronized clock before asking the ACME CA for a certificate; {{.Fallback}}", nil)
	case !expired.IsZero() && st.renewErr != "":
		say("relaystate.acme_expired_failed", "the trusted certificate expired on {{.Expired}} and renewing it failed ({{.At}}): {{.Err}}; renewal is retried; {{.Fallback}}",
			map[string]any{"Expired": day(expired), "At": at(st.renewErrAt), "Err": st.renewErr})
	case !expired.IsZero():
		say("relaystate.acme_expired", "the trusted certificate expired on {{.Expired}}; renewing it; {{.Fallback}}", map[string]any{"Expired": day(expired)})
	case st.lastErr != "" && !st.nextAttempt.IsZero():
		say("relaystate.acme_attempt_failed", "no trusted certificate yet: attempt {{.Attempt}} failed: {{.Err}}; next attempt at {{.Next}}; {{.Fallback}}",
			map[string]any{"Attempt": st.attempts, "Err": st.lastErr, "Next": at(st.nextAttempt)})
	case st.lastErr != "":
		say("relaystate.acme_retrying", "no trusted certificate yet: {{.Err}}; trying again now; {{.Fallback}}", map[string]any{"Err": st.lastErr})
	default:
		say("relaystate.acme_asking", "asking {{.CA}} for a certificate for {{.Host}} (DNS-01 challenge); {{.Fallback}}", map[string]any{"CA": m.caURL, "Host": m.host})
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
