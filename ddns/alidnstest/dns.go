package alidnstest

import (
	"net"
	"net/netip"
	"testing"

	"github.com/homederp/homederp/ddns/ddnstest"
)

// DNSOptions configure the DNS side.
type DNSOptions struct {
	// UDP and TCP are the sockets to serve on; if both are nil, StartDNS
	// listens on 127.0.0.1 on one random port for both.
	UDP net.PacketConn
	TCP net.Listener
	// NSAddrs are the addresses the domains' name servers
	// ("ns1.alidns.com", ...) resolve to; nil = the DNS side's own.
	NSAddrs []netip.Addr
}

// StartDNS serves every domain the fake holds as AliDNS's name servers
// would (see ddnstest.Authority): the enabled records of the default
// line. It returns the UDP address and stops with the test.
func (s *Server) StartDNS(t testing.TB, o DNSOptions) netip.AddrPort {
	t.Helper()
	a := ddnstest.StartAuthority(t, ddnstest.AuthorityOptions{UDP: o.UDP, TCP: o.TCP, NSAddrs: o.NSAddrs}, s.authZones)
	s.mu.Lock()
	s.dns = a
	s.mu.Unlock()
	return a.Addr
}

// FreezeDNS makes the DNS side keep serving the records as they are now,
// whatever the API changes: a stale name server. UnfreezeDNS ends it.
func (s *Server) FreezeDNS() {
	s.mu.Lock()
	a := s.dns
	s.mu.Unlock()
	a.Freeze()
}

// UnfreezeDNS ends FreezeDNS.
func (s *Server) UnfreezeDNS() {
	s.mu.Lock()
	a := s.dns
	s.mu.Unlock()
	a.Unfreeze()
}

func (s *Server) authZones() []ddnstest.AuthZone {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ddnstest.AuthZone
	for _, d := range s.domains {
		z := ddnstest.AuthZone{Name: d.Name, NS: d.NS, Mbox: "hostmaster.hichina.com"}
		for _, r := range s.records {
			if r.Domain != d.Name || r.Line != "default" || r.Status != "ENABLE" {
				continue
			}
			name := d.Name
			if r.RR != "@" {
				name = r.RR + "." + d.Name
			}
			z.Records = append(z.Records, ddnstest.AuthRR{Name: name, Type: r.Type, Value: r.Value, TTL: uint32(r.TTL)})
		}
		out = append(out, z)
	}
	return out
}
