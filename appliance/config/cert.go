package config

import (
	"net/mail"
	"strings"
)

// CertMode says where the relay's TLS certificate comes from.
type CertMode string

const (
	// CertSelfSigned: an ECDSA P-256 certificate made on the box; the DERP
	// map pins it with "CertName": "sha256-raw:<hex>".
	CertSelfSigned CertMode = "self-signed"
	// CertManual: <hostname>.crt and <hostname>.key supplied by the user
	// in the certificate directory (derper's naming).
	CertManual CertMode = "manual"
	// CertACMEDNS: a trusted certificate from an ACME CA (Let's Encrypt)
	// solved with a DNS-01 challenge through the DDNS provider.
	CertACMEDNS CertMode = "acme-dns"
)

// CertModes lists the valid modes, for forms and error messages.
var CertModes = []CertMode{CertSelfSigned, CertManual, CertACMEDNS}

// Cert configures the relay's certificate.
type Cert struct {
	Mode CertMode `json:"mode"`

	// InsecureForTests makes the emitted DERP map say
	// "InsecureForTests": true instead of pinning the self-signed
	// certificate, for clients too old to understand the pin.
	InsecureForTests bool `json:"insecure_for_tests,omitempty"`

	// ACMECA is "production", "staging" (Let's Encrypt) or the URL of an
	// ACME directory. Empty means production.
	ACMECA string `json:"acme_ca,omitempty"`
	// ACMEEmail is the optional contact address of the ACME account.
	ACMEEmail string `json:"acme_email,omitempty"`
}

func (c Config) validateCert(errs *Errors) {
	switch c.Cert.Mode {
	case CertSelfSigned, CertManual:
	case CertACMEDNS:
		if c.DDNS.Provider == "" {
			errs.add("cert.mode", "setting.acme_needs_provider", "acme-dns needs a DNS provider (ddns.provider) to answer the DNS-01 challenge", nil)
		}
		if isIP(c.Hostname) {
			errs.add("cert.mode", "setting.acme_needs_name", "acme-dns needs a DNS name as hostname, not an IP address", nil)
		}
	default:
		errs.add("cert.mode", "setting.cert_mode_unknown", "unknown certificate mode {{printf \"%q\" .Mode}}; choose one of {{.Modes}}", Args{"Mode": string(c.Cert.Mode), "Modes": joinModes()})
	}
	switch ca := c.Cert.ACMECA; {
	case ca == "", ca == "production", ca == "staging":
	case strings.HasPrefix(ca, "https://"):
	default:
		errs.add("cert.acme_ca", "setting.acme_ca_bad", "{{printf \"%q\" .CA}} is neither \"production\", \"staging\" nor an https:// ACME directory URL", Args{"CA": ca})
	}
	if e := c.Cert.ACMEEmail; e != "" {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			errs.add("cert.acme_email", "setting.acme_email_bad", "{{printf \"%q\" .Email}} is not an e-mail address", Args{"Email": e})
		}
	}
}

func joinModes() string {
	var s []string
	for _, m := range CertModes {
		s = append(s, string(m))
	}
	return strings.Join(s, ", ")
}
