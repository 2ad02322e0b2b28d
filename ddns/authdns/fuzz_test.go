package authdns_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/authdns"
	"github.com/miekg/dns"
)

// rawDNS answers every query on one loopback port, over UDP and TCP, with
// the bytes the test hands it (the query's ID copied in): the fuzzer
// plays every server the verifier asks, resolvers and authoritative ones.
type rawDNS struct {
	addr   netip.AddrPort
	answer chan []byte // the current iteration's answer; read, never drained
}

func startRawDNS(tb testing.TB) *rawDNS {
	tb.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			tb.Fatal(err)
		}
		if ln, err = net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		tb.Fatal("no loopback port free for both UDP and TCP")
	}
	tb.Cleanup(func() { pc.Close(); ln.Close() })
	s := &rawDNS{addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), answer: make(chan []byte, 1)}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(s.reply(buf[:n]), from)
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				a := s.reply(q)
				c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(a))))
				c.Write(a)
			}()
		}
	}()
	return s
}

// set makes b the answer to every query until the next set.
func (s *rawDNS) set(b []byte) {
	select {
	case <-s.answer:
	default:
	}
	s.answer <- b
}

func (s *rawDNS) reply(q []byte) []byte {
	b := <-s.answer
	s.answer <- b
	a := append([]byte{}, b...)
	if len(a) >= 2 && len(q) >= 2 {
		copy(a[:2], q[:2])
	}
	return a
}

// onlyTo dials nothing but the fake: the fuzzer's answers name arbitrary
// name servers, and a test sends no packet beyond loopback.
type onlyTo netip.AddrPort

func (o onlyTo) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if address != netip.AddrPort(o).String() {
		return nil, fmt.Errorf("not dialling %s in a test", address)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// FuzzAnswers: whatever the servers answer, the verifier must not panic
// or hang, and what it reports must be of the answer's own kind: records
// of the asked type and name only, addresses that are valid and of the
// record's family, zones that contain the name.
func FuzzAnswers(f *testing.F) {
	srv := startRawDNS(f)
	const host = "derp.example.com."
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		return r
	}
	for _, m := range []*dns.Msg{
		{Answer: []dns.RR{rr(host + " 60 IN A 192.0.2.10"), rr(host + " 60 IN AAAA 2001:db8::10")}},
		{Answer: []dns.RR{rr("example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 60")}},
		{Answer: []dns.RR{rr("example.com. 3600 IN NS ns1.example.com.")}, Extra: []dns.RR{rr("ns1.example.com. 3600 IN A 127.0.0.1")}},
		{Answer: []dns.RR{rr(host + " 60 IN CNAME elsewhere.example.net.")}},
	} {
		m.Response, m.Authoritative = true, true
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// An A record with no address in it (RDATA length 0).
	empty := &dns.Msg{Answer: []dns.RR{rr(host + " 60 IN A 192.0.2.10"), rr("example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 60"), rr("example.com. 3600 IN NS ns1.example.com.")}, Extra: []dns.RR{rr("ns1.example.com. 3600 IN A 127.0.0.1")}}
	empty.Response, empty.Authoritative = true, true
	b, err := empty.Pack()
	if err != nil {
		f.Fatal(err)
	}
	// The message has no question: the first answer's RDATA length
	// follows the header (12 bytes), the name (uncompressed, as it is the
	// first), type, class and TTL.
	rdlen := 12 + len(host) + 1 + 2 + 2 + 4
	b = append(append(b[:rdlen:rdlen], 0, 0), b[rdlen+2+4:]...)
	f.Add(b)
	f.Fuzz(func(t *testing.T, answer []byte) {
		srv.set(answer)
		c := &authdns.Checker{Resolvers: []netip.AddrPort{srv.addr}, Port: srv.addr.Port(), Net: onlyTo(srv.addr), Timeout: time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			rrs, _, err := c.Query(ctx, srv.addr, host, qt)
			if err != nil {
				continue
			}
			for _, r := range rrs {
				if r.Header().Rrtype != qt || !strings.EqualFold(r.Header().Name, host) {
					t.Fatalf("Query(%s, %s) returned %v", host, dns.TypeToString[qt], r)
				}
			}
		}
		s, err := c.Served(ctx, host, true, true)
		if err != nil {
			return
		}
		if !dns.IsSubDomain(s.Zone, host) {
			t.Fatalf("zone %q does not hold %s", s.Zone, host)
		}
		for _, as := range []struct {
			answers []authdns.Answer
			v6      bool
		}{{s.A, false}, {s.AAAA, true}} {
			for _, a := range as.answers {
				if a.Server.Addr != srv.addr {
					t.Fatalf("asked server %v", a.Server)
				}
				for _, ip := range a.Addrs {
					if !ip.IsValid() || ip.Is6() != as.v6 {
						t.Fatalf("served address %v among %v (IPv6 records: %v)", ip, a.Addrs, as.v6)
					}
				}
			}
		}
	})
}
