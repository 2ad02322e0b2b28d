package config

import (
	"net/netip"
	"strings"

	"github.com/homederp/homederp/relay/spec"
)

// ReverseProxy describes a reverse proxy in front of the relay: a web
// server (nginx, as the README shows) that holds a trusted certificate,
// terminates TLS on a public port such as 443 and forwards /derp to the
// box's DERP port. Clients then dial the proxy, so the map carries its
// host and port and no pin of the box's own certificate; STUN (UDP) does
// not pass an HTTP proxy and still goes to the box directly.
type ReverseProxy struct {
	Enabled bool `json:"enabled"`
	// PublicHost is the name clients dial, e.g. "derp.example.com";
	// empty means Hostname (the proxy sits on the home line too).
	PublicHost string `json:"public_host,omitempty"`
	// PublicPort is the proxy's TLS port, e.g. 443.
	PublicPort int `json:"public_port,omitempty"`
	// Trusted are the proxy's addresses as the box sees them (IPs or
	// prefixes), e.g. ["192.168.1.2"]: X-Forwarded-For is believed only
	// on connections from them, so nobody else can claim an address.
	Trusted []string `json:"trusted,omitempty"`
}

// TrustedPrefixes returns Trusted parsed; validation has checked it, so
// entries that do not parse are left out.
func (p ReverseProxy) TrustedPrefixes() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range p.Trusted {
		if pf, ok := parseAddrOrPrefix(s); ok {
			ps = append(ps, pf)
		}
	}
	return ps
}

// DialHost is the host clients dial for DERP: the proxy's when there is
// one, else the box's.
func (c Config) DialHost() string {
	if c.ReverseProxy.Enabled && c.ReverseProxy.PublicHost != "" {
		return c.ReverseProxy.PublicHost
	}
	return c.Hostname
}

// DialPort is the TCP port clients dial for DERP.
func (c Config) DialPort() int {
	if c.ReverseProxy.Enabled {
		return c.ReverseProxy.PublicPort
	}
	return c.Relay.DERPPort
}

func (p ReverseProxy) validate(errs *Errors) {
	if !p.Enabled {
		return
	}
	if p.PublicPort < 1 || p.PublicPort > 65535 {
		errs.add("reverse_proxy.public_port", "setting.proxy_port_bad", "{{.Port}} is not a port number (1–65535); the proxy's TLS port is usually 443", Args{"Port": p.PublicPort})
	}
	if h := p.PublicHost; h != "" && !isIP(h) && !spec.IsDNSName(h) {
		errs.add("reverse_proxy.public_host", "setting.proxy_host_bad", "{{printf \"%q\" .Host}} is not a valid DNS name or IP address; leave it empty when the proxy answers on the box's hostname", Args{"Host": h})
	}
	if len(p.Trusted) == 0 {
		errs.add("reverse_proxy.trusted", "setting.proxy_trusted_missing", "give the proxy's address as the box sees it (e.g. 192.168.1.2), so the relay knows whose X-Forwarded-For to believe", nil)
	}
	for _, s := range p.Trusted {
		if _, ok := parseAddrOrPrefix(s); !ok {
			errs.add("reverse_proxy.trusted", "setting.proxy_trusted_bad", "{{printf \"%q\" .Addr}} is not an IP address or prefix, e.g. 192.168.1.2 or 10.0.0.0/24", Args{"Addr": s})
		}
	}
}

func parseAddrOrPrefix(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), true
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	return netip.Prefix{}, false
}
