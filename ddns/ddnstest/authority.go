package ddnstest

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// AuthZone is what an authoritative server holds for one zone.
type AuthZone struct {
	Name    string   // apex without trailing dot, e.g. "example.com"
	NS      []string // its name servers, e.g. ["f1g1ns1.dnspod.net", "f1g1ns2.dnspod.net"]
	Mbox    string   // the SOA's mailbox, e.g. "freednsadmin.dnspod.com"
	Records []AuthRR
}

// AuthRR is one record as served.
type AuthRR struct {
	Name  string // absolute without trailing dot, e.g. "derp.example.com"
	Type  string // A, AAAA, TXT or CNAME
	Value string // e.g. "203.0.113.9"; TXT without quotes
	TTL   uint32
}

// AuthorityOptions are the sockets of an Authority.
type AuthorityOptions struct {
	// UDP and TCP are the sockets to serve on; if both are nil,
	// StartAuthority listens on 127.0.0.1 on one random port for both.
	UDP net.PacketConn
	TCP net.Listener
	// NSAddrs are the addresses the zones' name server names resolve to;
	// nil = the server's own address. A checker that asks the server for
	// the NS addresses then finds the server itself.
	NSAddrs []netip.Addr
}

// Authority is the DNS side of a provider fake: an authoritative server
// for whatever zones the fake holds at the moment of each query, so that
// the updater's check at the authoritative servers sees what the API
// wrote. It sets AA, serves SOA and NS at the apex, answers NXDOMAIN and
// NODATA with the SOA in the authority section, truncates over UDP as a
// real server does, and answers A/AAAA queries for its name servers'
// names as a resolver would.
type Authority struct {
	Addr netip.AddrPort // UDP (and TCP) address

	zones         func() []AuthZone
	nsAddrs       []netip.Addr
	mu            sync.Mutex
	frozen        []AuthZone
	frozenOn      bool
	forceTruncate atomic.Bool
	queries       atomic.Int64
}

// StartAuthority serves the zones that zones returns; it stops with the
// test.
func StartAuthority(t testing.TB, o AuthorityOptions, zones func() []AuthZone) *Authority {
	t.Helper()
	if o.UDP == nil && o.TCP == nil {
		o.UDP, o.TCP = loopbackPair(t)
	}
	a := &Authority{zones: zones, nsAddrs: o.NSAddrs}
	if o.UDP != nil {
		a.Addr = addrPort(o.UDP.LocalAddr())
	} else {
		a.Addr = addrPort(o.TCP.Addr())
	}
	if a.nsAddrs == nil {
		a.nsAddrs = []netip.Addr{a.Addr.Addr()}
	}
	h := dns.HandlerFunc(a.serve)
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
	return a
}

// Freeze makes the server keep serving the zones as they are now, whatever
// the API changes: a stale authoritative server. Unfreeze ends it.
func (a *Authority) Freeze() {
	z := a.zones()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.frozen, a.frozenOn = z, true
}

// Unfreeze ends Freeze.
func (a *Authority) Unfreeze() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.frozen, a.frozenOn = nil, false
}

// ForceTruncation makes UDP answers come back with TC set and no records,
// so that clients must retry over TCP.
func (a *Authority) ForceTruncation(on bool) { a.forceTruncate.Store(on) }

// Queries returns how many queries the server answered.
func (a *Authority) Queries() int64 { return a.queries.Load() }

func (a *Authority) current() []AuthZone {
	a.mu.Lock()
	frozen, on := a.frozen, a.frozenOn
	a.mu.Unlock()
	if on {
		return frozen
	}
	return a.zones()
}

func (a *Authority) serve(w dns.ResponseWriter, req *dns.Msg) {
	a.queries.Add(1)
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
	if udp && a.forceTruncate.Load() {
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

	zones := a.current()
	var zone *AuthZone
	for i, z := range zones {
		if (name == z.Name || strings.HasSuffix(name, "."+z.Name)) && (zone == nil || len(z.Name) > len(zone.Name)) {
			zone = &zones[i]
		}
	}
	if zone == nil {
		// Not our zone: answer for the name servers' own names, as the
		// resolver would, and refuse the rest.
		for _, z := range zones {
			for _, ns := range z.NS {
				if strings.EqualFold(ns, name) {
					m.Authoritative = true
					for _, addr := range a.nsAddrs {
						if rr := addrRR(q.Name, addr, 86400); rr != nil && rr.Header().Rrtype == q.Qtype {
							m.Answer = append(m.Answer, rr)
						}
					}
					w.WriteMsg(m)
					return
				}
			}
		}
		m.Rcode = dns.RcodeRefused
		w.WriteMsg(m)
		return
	}

	m.Authoritative = true
	apex := dns.Fqdn(zone.Name)
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 1800},
		Ns: dns.Fqdn(zone.NS[0]), Mbox: dns.Fqdn(zone.Mbox), Serial: uint32(time.Now().Unix()),
		Refresh: 10000, Retry: 2400, Expire: 604800, Minttl: 1800}
	exists := name == zone.Name
	if exists {
		switch q.Qtype {
		case dns.TypeSOA:
			m.Answer = append(m.Answer, soa)
		case dns.TypeNS:
			for _, ns := range zone.NS {
				m.Answer = append(m.Answer, &dns.NS{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 86400}, Ns: dns.Fqdn(ns)})
				for _, addr := range a.nsAddrs {
					if rr := addrRR(dns.Fqdn(ns), addr, 86400); rr != nil {
						m.Extra = append(m.Extra, rr)
					}
				}
			}
		}
	}
	for _, r := range zone.Records {
		rname := strings.ToLower(r.Name)
		switch {
		case rname == name:
			exists = true
			if r.Type == dns.TypeToString[q.Qtype] || r.Type == "CNAME" {
				if rr := authRR(q.Name, r); rr != nil {
					m.Answer = append(m.Answer, rr)
				}
			}
		case strings.HasSuffix(rname, "."+name):
			exists = true // an empty non-terminal
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

// authRR renders a held record for the question's name.
func authRR(qname string, r AuthRR) dns.RR {
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: qname, Rrtype: t, Class: dns.ClassINET, Ttl: r.TTL}
	}
	switch r.Type {
	case "A", "AAAA":
		a, err := netip.ParseAddr(r.Value)
		if err != nil || a.Is4() != (r.Type == "A") {
			return nil
		}
		return addrRR(qname, a, r.TTL)
	case "TXT":
		txt := r.Value
		var parts []string
		for len(txt) > 255 {
			parts = append(parts, txt[:255])
			txt = txt[255:]
		}
		parts = append(parts, txt)
		return &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: parts}
	case "CNAME":
		return &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: dns.Fqdn(r.Value)}
	}
	return nil
}

// DNSSide is a provider fake's DNS side: an authoritative server for the
// zones the fake holds at the moment of each query. Fake embeds it.
type DNSSide struct {
	mu    sync.Mutex
	a     *Authority
	zones func() []AuthZone
}

// StartDNS starts the DNS side (see Authority) on o's sockets and returns
// its UDP address; it stops with the test.
func (d *DNSSide) StartDNS(t testing.TB, o AuthorityOptions) netip.AddrPort {
	t.Helper()
	a := StartAuthority(t, o, d.zones)
	d.mu.Lock()
	d.a = a
	d.mu.Unlock()
	return a.Addr
}

func (d *DNSSide) authority() *Authority {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.a
}

// FreezeDNS makes the DNS side keep serving the records as they are now,
// whatever the API changes: a stale authoritative server. UnfreezeDNS ends
// it.
func (d *DNSSide) FreezeDNS() {
	if a := d.authority(); a != nil {
		a.Freeze()
	}
}

// UnfreezeDNS ends FreezeDNS.
func (d *DNSSide) UnfreezeDNS() {
	if a := d.authority(); a != nil {
		a.Unfreeze()
	}
}

// ForceTruncation makes UDP answers come back with TC set and no records,
// so that clients must retry over TCP.
func (d *DNSSide) ForceTruncation(on bool) {
	if a := d.authority(); a != nil {
		a.ForceTruncation(on)
	}
}

// DNSQueries returns how many DNS queries the DNS side answered.
func (d *DNSSide) DNSQueries() int64 {
	if a := d.authority(); a != nil {
		return a.Queries()
	}
	return 0
}
