package tencentcloudtest

import (
	"net/netip"
	"testing"

	"github.com/homederp/homederp/ddns/ddnstest"
)

// DNSOptions configure the DNS side: its sockets (nil = 127.0.0.1 on a
// random port) and the addresses the domains' name servers
// ("f1g1ns1.dnspod.net", ...) resolve to (nil = the DNS side's own).
type DNSOptions = ddnstest.AuthorityOptions

// StartDNS serves every domain the fake holds as DNSPod's name servers
// would (see ddnstest.Authority): the enabled records of the default
// line; a paused domain serves nothing. It returns the UDP address and
// stops with the test.
func (s *Server) StartDNS(t testing.TB, o DNSOptions) netip.AddrPort {
	t.Helper()
	return s.StartAuthority(t, o, s.authZones)
}

func (s *Server) authZones() []ddnstest.AuthZone {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ddnstest.AuthZone
	for _, d := range s.domains {
		z := ddnstest.AuthZone{Name: d.Name, NS: d.NS, Mbox: "freednsadmin.dnspod.com"}
		if d.Status == "ENABLE" {
			z.Records = s.records.Served(d.Name, "默认")
		}
		out = append(out, z)
	}
	return out
}
