package tencentcloudtest

import "github.com/homederp/homederp/ddns/ddnstest"

// DNSOptions configure the DNS side: its sockets (nil = 127.0.0.1 on a
// random port) and the addresses the domains' name servers
// ("f1g1ns1.dnspod.net", ...) resolve to (nil = the DNS side's own).
type DNSOptions = ddnstest.AuthorityOptions

// authZones is what DNSPod's name servers serve (see StartDNS): the
// enabled records of the default line of every domain; a paused domain
// serves nothing.
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
