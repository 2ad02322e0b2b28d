package cloudflaretest

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/ipclass"
	"github.com/miekg/dns"
)

// dnsState is the DNS side's configuration.
type dnsState struct {
	nsAddrs       []netip.Addr // what the zones' NS names resolve to
	forceTruncate atomic.Bool
	queries       atomic.Int64
}

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

// StartDNS serves every zone the fake holds as an authoritative server
// would: AA set, SOA and NS at the apex, NXDOMAIN and NODATA with the SOA in
// the authority section, Cloudflare anycast addresses for proxied records,
// TTL 300 for automatic TTLs. It also answers A/AAAA queries for its
// zones' name server names, like a resolver would. It returns the UDP
// address and stops with the test.
func (s *Server) StartDNS(t testing.TB, o DNSOptions) netip.AddrPort {
	t.Helper()
	if o.UDP == nil && o.TCP == nil {
		var err error
		for i := 0; i < 10; i++ {
			o.TCP, err = net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatalf("cloudflaretest: listening for DNS: %v", err)
			}
			o.UDP, err = net.ListenPacket("udp", o.TCP.Addr().String())
			if err == nil {
				break
			}
			o.TCP.Close()
		}
		if err != nil {
			t.Fatalf("cloudflaretest: no free port for DNS: %v", err)
		}
	}
	var addr netip.AddrPort
	if o.UDP != nil {
		addr = o.UDP.LocalAddr().(*net.UDPAddr).AddrPort()
	} else {
		addr = o.TCP.Addr().(*net.TCPAddr).AddrPort()
	}
	st := &dnsState{nsAddrs: o.NSAddrs}
	if st.nsAddrs == nil {
		st.nsAddrs = []netip.Addr{addr.Addr().Unmap()}
	}
	s.mu.Lock()
	s.dns = st
	s.mu.Unlock()
	h := dns.HandlerFunc(s.serveDNS)
	if o.UDP != nil {
		srv := &dns.Server{PacketConn: o.UDP, Handler: h}
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	if o.TCP != nil {
		srv := &dns.Server{Listener: o.TCP, Handler: h}
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
}

// ForceTruncation makes UDP answers come back with TC set and no records,
// so that clients must retry over TCP.
func (s *Server) ForceTruncation(on bool) {
	s.mu.Lock()
	st := s.dns
	s.mu.Unlock()
	if st != nil {
		st.forceTruncate.Store(on)
	}
}

// DNSQueries returns how many DNS queries the fake answered.
func (s *Server) DNSQueries() int64 {
	s.mu.Lock()
	st := s.dns
	s.mu.Unlock()
	if st == nil {
		return 0
	}
	return st.queries.Load()
}

const autoTTL = 300 // what Cloudflare serves for TTL 1 ("automatic")

func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.mu.Lock()
	st := s.dns
	s.mu.Unlock()
	st.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = false
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	if udp && st.forceTruncate.Load() {
		m.Truncated = true
		m.Authoritative = true
		w.WriteMsg(m)
		return
	}
	if q.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeRefused
		w.WriteMsg(m)
		return
	}

	s.mu.Lock()
	recs := s.records
	if s.frozenOn {
		recs = s.frozen
	}
	var zone *Zone
	for _, z := range s.zones {
		if (name == z.Name || strings.HasSuffix(name, "."+z.Name)) && (zone == nil || len(z.Name) > len(zone.Name)) {
			zone = z
		}
	}
	var nsNames []string
	for _, z := range s.zones {
		nsNames = append(nsNames, z.NameServers...)
	}
	var matches []Record
	exists := false
	if zone != nil {
		for _, r := range recs {
			if r.ZoneID != zone.ID {
				continue
			}
			if r.Name == name {
				exists = true
				if r.Type == dns.TypeToString[q.Qtype] || r.Type == "CNAME" {
					matches = append(matches, *r)
				}
			} else if strings.HasSuffix(r.Name, "."+name) {
				exists = true // an empty non-terminal
			}
		}
	}
	s.mu.Unlock()

	if zone == nil {
		// Not our zone: answer for the name servers' own names, as the
		// resolver would, and refuse the rest.
		for _, ns := range nsNames {
			if strings.EqualFold(ns, name) {
				m.Authoritative = true
				for _, a := range st.nsAddrs {
					if rr := addrRR(q.Name, a, 86400); rr != nil && rr.Header().Rrtype == q.Qtype {
						m.Answer = append(m.Answer, rr)
					}
				}
				w.WriteMsg(m)
				return
			}
		}
		m.Rcode = dns.RcodeRefused
		w.WriteMsg(m)
		return
	}

	m.Authoritative = true
	apex := dns.Fqdn(zone.Name)
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 1800},
		Ns: dns.Fqdn(zone.NameServers[0]), Mbox: "dns.cloudflare.com.", Serial: uint32(time.Now().Unix()),
		Refresh: 10000, Retry: 2400, Expire: 604800, Minttl: 1800}
	if name == zone.Name {
		exists = true
		switch q.Qtype {
		case dns.TypeSOA:
			m.Answer = append(m.Answer, soa)
		case dns.TypeNS:
			for _, ns := range zone.NameServers {
				m.Answer = append(m.Answer, &dns.NS{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 86400}, Ns: dns.Fqdn(ns)})
				for _, a := range st.nsAddrs {
					if rr := addrRR(dns.Fqdn(ns), a, 86400); rr != nil {
						m.Extra = append(m.Extra, rr)
					}
				}
			}
		}
	}
	for _, r := range matches {
		if rr := recordRR(q.Name, r); rr != nil {
			m.Answer = append(m.Answer, rr)
		}
	}
	if len(m.Answer) == 0 {
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = append(m.Ns, soa)
	}
	if udp {
		size := 512
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

func addrRR(name string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: a.AsSlice()}
	}
	if a.Is6() {
		return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()}
	}
	return nil
}

// recordRR renders a stored record as Cloudflare's servers answer it.
func recordRR(qname string, r Record) dns.RR {
	ttl := uint32(r.TTL)
	if r.TTL == 1 {
		ttl = autoTTL
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: qname, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	switch r.Type {
	case "A", "AAAA":
		a, err := netip.ParseAddr(r.Content)
		if err != nil {
			return nil
		}
		if r.Proxied {
			a = ipclass.CloudflareProxyAddrs[0]
			if r.Type == "AAAA" {
				a = ipclass.CloudflareProxyAddrs[1]
			}
			ttl = autoTTL
		}
		return addrRR(qname, a, ttl)
	case "TXT":
		txt := strings.TrimSuffix(strings.TrimPrefix(r.Content, `"`), `"`)
		var parts []string
		for len(txt) > 255 {
			parts = append(parts, txt[:255])
			txt = txt[255:]
		}
		parts = append(parts, txt)
		return &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: parts}
	case "CNAME":
		return &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: dns.Fqdn(r.Content)}
	}
	return nil
}
