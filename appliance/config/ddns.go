package config

import (
	"fmt"
	"net"
	"time"
)

// DNS providers the box can update.
const (
	ProviderNone       = ""
	ProviderCloudflare = "cloudflare"
	ProviderRFC2136    = "rfc2136"
)

// DDNS configures keeping Hostname's A and AAAA records pointed at the
// home line. The provider's credential is a secret (SecretCloudflareToken
// or SecretTSIG), not part of this document.
type DDNS struct {
	// Provider is "" (no DDNS: the hostname is managed elsewhere),
	// "cloudflare" or "rfc2136".
	Provider string `json:"provider,omitempty"`

	IPv4 bool `json:"ipv4"` // keep the A record
	IPv6 bool `json:"ipv6"` // keep the AAAA record

	// Interval between checks, e.g. "2m". Checks cost no API calls
	// unless the address changed.
	Interval Duration `json:"interval"`

	RFC2136 RFC2136 `json:"rfc2136,omitzero"`
}

// RFC2136 addresses a DNS server that accepts TSIG-signed dynamic updates.
type RFC2136 struct {
	Server       string `json:"server,omitempty"`        // e.g. "ns1.example.com:53"
	Zone         string `json:"zone,omitempty"`          // e.g. "example.com."; empty: found from the hostname
	KeyName      string `json:"key_name,omitempty"`      // e.g. "homederp."
	KeyAlgorithm string `json:"key_algorithm,omitempty"` // e.g. "hmac-sha256."
}

func defaultDDNS() DDNS {
	return DDNS{IPv4: true, IPv6: true, Interval: Duration(2 * time.Minute)}
}

func (c Config) validateDDNS(errs *Errors) {
	d := c.DDNS
	switch d.Provider {
	case ProviderNone:
		return
	case ProviderCloudflare, ProviderRFC2136:
	default:
		errs.add("ddns.provider", fmt.Sprintf("unknown DNS provider %q; choose cloudflare, rfc2136, or none", d.Provider))
		return
	}
	if isIP(c.Hostname) {
		errs.add("ddns.provider", "dynamic DNS needs a DNS name as hostname, not an IP address")
	}
	if !d.IPv4 && !d.IPv6 {
		errs.add("ddns.ipv4", "dynamic DNS is on but neither IPv4 nor IPv6 is selected")
	}
	if iv := time.Duration(d.Interval); iv < 30*time.Second || iv > 24*time.Hour {
		errs.add("ddns.interval", fmt.Sprintf("%v is outside 30s–24h", iv))
	}
	if d.Provider == ProviderRFC2136 {
		r := d.RFC2136
		if _, _, err := net.SplitHostPort(r.Server); err != nil {
			errs.add("ddns.rfc2136.server", fmt.Sprintf("%q is not host:port, e.g. ns1.example.com:53", r.Server))
		}
		if r.KeyName == "" {
			errs.add("ddns.rfc2136.key_name", "the TSIG key name is missing")
		}
		switch r.KeyAlgorithm {
		case "hmac-sha256.", "hmac-sha512.", "hmac-sha384.", "hmac-sha224.", "hmac-sha1.":
		default:
			errs.add("ddns.rfc2136.key_algorithm", fmt.Sprintf("%q is not a supported TSIG algorithm (e.g. hmac-sha256.)", r.KeyAlgorithm))
		}
		if r.Zone != "" && !isDNSName(r.Zone) {
			errs.add("ddns.rfc2136.zone", fmt.Sprintf("%q is not a DNS name", r.Zone))
		}
	}
}
