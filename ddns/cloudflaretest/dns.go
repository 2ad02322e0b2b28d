package cloudflaretest

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/ipclass"
)

// DNSOptions configure the DNS side.
type DNSOptions struct {
	// UDP and TCP are the sockets to serve on; if both are nil, StartDNS
	// listens on 127.0.0.1 on one random port for both.
	UDP net.PacketConn
	TCP net.Listener
	// NSAddrs are the addresses the zones' name servers
	// ("ada.ns.cloudflare.com", ...) resolve to; nil = the UDP socket's
	// address. A checker that asks the fake for the NS addresses then
	// finds the fake itself.
	NSAddrs []netip.Addr
}

// StartDNS serves every zone the fake holds as Cloudflare's authoritative
// servers would (see ddnstest.Authority), with Cloudflare anycast
// addresses for proxied records and TTL 300 for automatic TTLs. It returns
// the UDP address and stops with the test.
func (s *Server) StartDNS(t testing.TB, o DNSOptions) netip.AddrPort {
	t.Helper()
	a := ddnstest.StartAuthority(t, ddnstest.AuthorityOptions{UDP: o.UDP, TCP: o.TCP, NSAddrs: o.NSAddrs}, s.authZones)
	s.mu.Lock()
	s.dns = a
	s.mu.Unlock()
	return a.Addr
}

func (s *Server) authority() *ddnstest.Authority {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dns
}

// ForceTruncation makes UDP answers come back with TC set and no records,
// so that clients must retry over TCP.
func (s *Server) ForceTruncation(on bool) {
	if a := s.authority(); a != nil {
		a.ForceTruncation(on)
	}
}

// DNSQueries returns how many DNS queries the fake answered.
func (s *Server) DNSQueries() int64 {
	if a := s.authority(); a != nil {
		return a.Queries()
	}
	return 0
}

// FreezeDNS makes the DNS side keep serving the records as they are now,
// whatever the API changes: a stale authoritative server. UnfreezeDNS ends
// it.
func (s *Server) FreezeDNS() {
	if a := s.authority(); a != nil {
		a.Freeze()
	}
}

// UnfreezeDNS ends FreezeDNS.
func (s *Server) UnfreezeDNS() {
	if a := s.authority(); a != nil {
		a.Unfreeze()
	}
}

const autoTTL = 300 // what Cloudflare serves for TTL 1 ("automatic")

// authZones is what Cloudflare's servers serve now.
func (s *Server) authZones() []ddnstest.AuthZone {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ddnstest.AuthZone
	for _, z := range s.zones {
		az := ddnstest.AuthZone{Name: z.Name, NS: z.NameServers, Mbox: "dns.cloudflare.com"}
		for _, r := range s.records {
			if r.ZoneID == z.ID {
				az.Records = append(az.Records, served(*r))
			}
		}
		out = append(out, az)
	}
	return out
}

// served renders a stored record as Cloudflare's servers answer it.
func served(r Record) ddnstest.AuthRR {
	rr := ddnstest.AuthRR{Name: r.Name, Type: r.Type, Value: r.Content, TTL: uint32(r.TTL)}
	if r.TTL == 1 {
		rr.TTL = autoTTL
	}
	switch {
	case r.Proxied && r.Type == "A":
		rr.Value, rr.TTL = ipclass.CloudflareProxyAddrs[0].String(), autoTTL
	case r.Proxied && r.Type == "AAAA":
		rr.Value, rr.TTL = ipclass.CloudflareProxyAddrs[1].String(), autoTTL
	case r.Type == "TXT":
		rr.Value = strings.TrimSuffix(strings.TrimPrefix(r.Content, `"`), `"`)
	}
	return rr
}
