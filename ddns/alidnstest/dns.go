package alidnstest

import "github.com/homederp/homederp/ddns/ddnstest"

// DNSOptions configure the DNS side: its sockets (nil = 127.0.0.1 on a
// random port) and the addresses the domains' name servers
// ("ns1.alidns.com", ...) resolve to (nil = the DNS side's own).
type DNSOptions = ddnstest.AuthorityOptions

// authZones is what AliDNS's name servers serve (see StartDNS): the
// enabled records of the default line of every domain.
func (s *Server) authZones() []ddnstest.AuthZone {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ddnstest.AuthZone
	for _, d := range s.domains {
		out = append(out, ddnstest.AuthZone{Name: d.Name, NS: d.NS, Mbox: "hostmaster.hichina.com", Records: s.records.Served(d.Name, "default")})
	}
	return out
}
