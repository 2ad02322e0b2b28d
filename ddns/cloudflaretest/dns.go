package cloudflaretest

import (
	"strings"

	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/ipclass"
)

// DNSOptions configure the DNS side: its sockets (nil = 127.0.0.1 on a
// random port) and the addresses the zones' name servers
// ("ada.ns.cloudflare.com", ...) resolve to (nil = the DNS side's own).
type DNSOptions = ddnstest.AuthorityOptions

const autoTTL = 300 // what Cloudflare serves for TTL 1 ("automatic")

// authZones is what Cloudflare's authoritative servers serve now (see
// StartDNS): every zone, with Cloudflare anycast addresses for proxied
// records and TTL 300 for automatic TTLs.
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
