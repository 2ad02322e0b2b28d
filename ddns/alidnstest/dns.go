package alidnstest

import (
	"net/netip"
	"testing"

	"github.com/homederp/homederp/ddns/ddnstest"
)

// DNSOptions configure the DNS side: its sockets (nil = 127.0.0.1 on a
// random port) and the addresses the domains' name servers
// ("ns1.alidns.com", ...) resolve to (nil = the DNS side's own).
type DNSOptions = ddnstest.AuthorityOptions

// StartDNS serves every domain the fake holds as AliDNS's name servers
// would (see ddnstest.Authority): the enabled records of the default
// line. It returns the UDP address and stops with the test.
func (s *Server) StartDNS(t testing.TB, o DNSOptions) netip.AddrPort {
	t.Helper()
	return s.StartAuthority(t, o, s.authZones)
}

func (s *Server) authZones() []ddnstest.AuthZone {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ddnstest.AuthZone
	for _, d := range s.domains {
		out = append(out, ddnstest.AuthZone{Name: d.Name, NS: d.NS, Mbox: "hostmaster.hichina.com", Records: s.records.Served(d.Name, "default")})
	}
	return out
}
