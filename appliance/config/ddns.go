package config

import (
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/homederp/homederp/relay/spec"
)

// DNS providers the box can update.
const (
	ProviderNone         = ""
	ProviderCloudflare   = "cloudflare"
	ProviderRFC2136      = "rfc2136"
	ProviderTencentCloud = "tencentcloud" // DNSPod, through the Tencent Cloud API
	ProviderAliDNS       = "alidns"       // Alibaba Cloud DNS
)

// ProviderInfo names a DNS provider.
type ProviderInfo struct {
	ID   string // e.g. "tencentcloud"
	Name string // the name a user knows it by, e.g. "DNSPod (Tencent Cloud)"
}

// Providers lists the DNS providers in the order the setup page offers
// them.
var Providers = []ProviderInfo{
	{ProviderCloudflare, "Cloudflare"},
	{ProviderTencentCloud, "DNSPod (Tencent Cloud)"},
	{ProviderAliDNS, "AliDNS (Alibaba Cloud)"},
	{ProviderRFC2136, "RFC 2136 dynamic update with a TSIG key (BIND, Knot, PowerDNS)"},
}

// ProviderName is the name a user knows provider by, e.g. "DNSPod (Tencent
// Cloud)" for "tencentcloud".
func ProviderName(provider string) string {
	for _, p := range Providers {
		if p.ID == provider {
			return p.Name
		}
	}
	return provider
}

// DDNS configures keeping Hostname's A and AAAA records pointed at the
// home line. The provider's credential is a secret (see ProviderSecret),
// not part of this document.
type DDNS struct {
	// Provider is "" (no DDNS: the hostname is managed elsewhere),
	// "cloudflare", "tencentcloud", "alidns" or "rfc2136".
	Provider string `json:"provider,omitempty"`

	IPv4 bool `json:"ipv4"` // keep the A record
	IPv6 bool `json:"ipv6"` // keep the AAAA record

	// Interval between full checks, e.g. "2m". Checks cost no API calls
	// unless the address changed. Between them a probe (one STUN
	// request) runs every 30 s and starts a full check when it sees a
	// new address.
	Interval Duration `json:"interval"`

	RFC2136 RFC2136 `json:"rfc2136,omitzero"`

	// Detection sources. Empty means homederp's defaults (public servers
	// of several operators); tests and people behind filtering networks
	// set their own.

	// STUNServers must agree on the IPv4 address (at least two answer),
	// e.g. ["stun.cloudflare.com:3478", "stun.l.google.com:19302"]. The
	// same servers confirm the IPv6 address over IPv6.
	STUNServers []string `json:"stun_servers,omitempty"`
	// Whoami servers give the DNS cross-check of the IPv4 address, tried
	// in order.
	Whoami []WhoamiServer `json:"whoami,omitempty"`
	// Resolvers find the zone and its name servers, e.g. ["192.168.1.1:53"];
	// empty = the box's own resolvers.
	Resolvers []string `json:"resolvers,omitempty"`
}

// WhoamiServer is a DNS server answering "whoami.cloudflare." TXT in class
// CH with the asker's address.
type WhoamiServer struct {
	Addr string `json:"addr"` // IPv4 and port, e.g. "1.1.1.1:853"
	// TLSName selects DNS over TLS and is the name in the server's
	// certificate, e.g. "cloudflare-dns.com". Empty means plain DNS, which
	// routers can intercept and attackers can spoof.
	TLSName string `json:"tls_name,omitempty"`
}

// MinSTUNServers is how many STUN servers a custom list needs: two must
// agree before an address is trusted.
const MinSTUNServers = 2

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
	d.validateSources(errs)
	switch d.Provider {
	case ProviderNone:
		return
	case ProviderCloudflare, ProviderRFC2136, ProviderTencentCloud, ProviderAliDNS:
	default:
		errs.add("ddns.provider", "setting.provider_unknown", "unknown DNS provider {{printf \"%q\" .Provider}}; choose cloudflare, tencentcloud, alidns, rfc2136, or none", Args{"Provider": d.Provider})
		return
	}
	if isIP(c.Hostname) {
		errs.add("ddns.provider", "setting.ddns_needs_name", "dynamic DNS needs a DNS name as hostname, not an IP address", nil)
	}
	if !d.IPv4 && !d.IPv6 {
		errs.add("ddns.ipv4", "setting.ddns_no_family", "dynamic DNS is on but neither IPv4 nor IPv6 is selected", nil)
	}
	if iv := time.Duration(d.Interval); iv < 30*time.Second || iv > 24*time.Hour {
		errs.add("ddns.interval", "setting.interval_range", "{{.Interval}} is outside 30s–24h", Args{"Interval": iv.String()})
	}
	if d.Provider == ProviderRFC2136 {
		r := d.RFC2136
		if !validHostPort(r.Server) {
			errs.add("ddns.rfc2136.server", "setting.rfc2136_server_bad", "{{printf \"%q\" .Server}} is not host:port, e.g. ns1.example.com:53", Args{"Server": r.Server})
		}
		if r.KeyName == "" {
			errs.add("ddns.rfc2136.key_name", "setting.tsig_name_missing", "the TSIG key name is missing", nil)
		}
		switch r.KeyAlgorithm {
		case "hmac-sha256.", "hmac-sha512.", "hmac-sha384.", "hmac-sha224.", "hmac-sha1.":
		default:
			errs.add("ddns.rfc2136.key_algorithm", "setting.tsig_alg_bad", "{{printf \"%q\" .Alg}} is not a supported TSIG algorithm (e.g. hmac-sha256.)", Args{"Alg": r.KeyAlgorithm})
		}
		if r.Zone != "" && !spec.IsDNSName(r.Zone) {
			errs.add("ddns.rfc2136.zone", "setting.rfc2136_zone_bad", "{{printf \"%q\" .Zone}} is not a DNS name", Args{"Zone": r.Zone})
		}
	}
}

// validateSources checks the detection sources, whether or not a provider
// is set, so that a bad list is refused when it is saved.
func (d DDNS) validateSources(errs *Errors) {
	if n := len(d.STUNServers); n > 0 && n < MinSTUNServers {
		errs.add("ddns.stun_servers", "setting.stun_servers_few", "list at least {{.N}} STUN servers (two must agree), or none for the defaults", Args{"N": MinSTUNServers})
	}
	for _, s := range d.STUNServers {
		if !validHostPort(s) {
			errs.add("ddns.stun_servers", "setting.stun_server_bad", "{{printf \"%q\" .Server}} is not host:port, e.g. stun.cloudflare.com:3478", Args{"Server": s})
		}
	}
	for _, w := range d.Whoami {
		ap, err := netip.ParseAddrPort(w.Addr)
		if err != nil || !ap.Addr().Unmap().Is4() || ap.Port() == 0 {
			errs.add("ddns.whoami", "setting.whoami_addr_bad", "{{printf \"%q\" .Addr}} is not an IPv4 address with port, e.g. 1.1.1.1:853", Args{"Addr": w.Addr})
		}
		if w.TLSName != "" && !spec.IsDNSName(w.TLSName) {
			errs.add("ddns.whoami", "setting.whoami_name_bad", "{{printf \"%q\" .Name}} is not a DNS name for the server's certificate", Args{"Name": w.TLSName})
		}
	}
	for _, r := range d.Resolvers {
		if _, err := netip.ParseAddrPort(r); err != nil {
			errs.add("ddns.resolvers", "setting.resolver_bad", "{{printf \"%q\" .Addr}} is not an IP address with port, e.g. 192.168.1.1:53", Args{"Addr": r})
		}
	}
}

// validHostPort reports whether s is host:port with a DNS name or IP
// address and a port in 1–65535.
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return false
	}
	return isIP(host) || spec.IsDNSName(host)
}
