package config

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
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
	// ACMECARoots are the root certificates (PEM, e.g.
	// "-----BEGIN CERTIFICATE-----\n...") that the HTTPS API of a
	// private ACME CA at an https:// ACMECA chains to, such as step-ca's
	// root_ca.crt: the box has only the public roots, so without them it
	// cannot talk to such a CA at all. Empty means the public roots. They
	// replace the public roots for the CA's API only; the relay's clients
	// decide for themselves whether to trust what the CA issues.
	ACMECARoots string `json:"acme_ca_roots,omitempty"`
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
	if r := c.Cert.ACMECARoots; r != "" {
		if !strings.HasPrefix(c.Cert.ACMECA, "https://") {
			errs.add("cert.acme_ca_roots", "setting.acme_roots_public", "root certificates are only for a private ACME CA: give its https:// directory URL, or leave them empty for Let's Encrypt", nil)
		} else if _, err := ParseACMECARoots(r); err != nil {
			errs.add("cert.acme_ca_roots", "setting.acme_roots_bad", "the ACME CA's root certificates: {{.Err}}", Args{"Err": err.Error()})
		}
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

// ParseACMECARoots parses Cert.ACMECARoots: one or more PEM
// "CERTIFICATE" blocks, and nothing else but white space, so that a
// paste cut short or a key pasted by mistake is refused when it is saved
// rather than failing every later talk with the CA.
func ParseACMECARoots(s string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(s)
	for {
		rest = bytes.TrimSpace(rest)
		if len(rest) == 0 {
			break
		}
		var b *pem.Block
		b, rest = pem.Decode(rest)
		switch {
		case b == nil:
			return nil, errors.New("not PEM (-----BEGIN CERTIFICATE-----), or cut short")
		case b.Type != "CERTIFICATE":
			return nil, fmt.Errorf("a PEM %q block where a CERTIFICATE belongs", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs, nil
}
