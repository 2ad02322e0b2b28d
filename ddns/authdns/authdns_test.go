package authdns_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/cloudflaretest"
	"github.com/homederp/homederp/internal/bindtest"
	"github.com/miekg/dns"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestAgainstBIND(t *testing.T) {
	srv := bindtest.Start(t, bindtest.Options{Zone: "example.com.", Records: []string{
		"derp 60 IN A 203.0.113.9",
		"derp 60 IN AAAA 2001:db8:1::10",
		"alias 60 IN CNAME derp",
		"multi 60 IN A 192.0.2.1",
		"multi 60 IN A 192.0.2.2",
	}})
	c := &authdns.Checker{Resolvers: []netip.AddrPort{srv.Addr}, Port: srv.Addr.Port(), Timeout: 2 * time.Second}
	ctx := context.Background()

	for _, name := range []string{"derp.example.com", "deep.under.derp.example.com.", "example.com"} {
		z, err := c.FindZone(ctx, name)
		if err != nil || z != "example.com." {
			t.Errorf("FindZone(%s): got %q, %v; want example.com.", name, z, err)
		}
	}
	ns, err := c.Nameservers(ctx, "example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].Name != "ns1.example.com." || ns[0].Addr != srv.Addr {
		t.Errorf("Nameservers: got %v, want ns1.example.com. at %v", ns, srv.Addr)
	}

	s, err := c.Served(ctx, "derp.example.com", true, true)
	if err != nil {
		t.Fatal(err)
	}
	if g := authdns.Compare(s.A, addrs("203.0.113.9")); !g.InSync() {
		t.Errorf("A: got %+v, want in sync with 203.0.113.9", s.A)
	}
	if g := authdns.Compare(s.AAAA, addrs("2001:db8:1::10")); !g.InSync() {
		t.Errorf("AAAA: got %+v, want in sync", s.AAAA)
	}
	if s.A[0].TTL != 60 {
		t.Errorf("TTL: got %d, want 60", s.A[0].TTL)
	}
	if g := authdns.Compare(s.A, addrs("198.51.100.1")); g.InSync() || g.Matching != 0 || g.Answered != 1 {
		t.Errorf("Compare with another address: got %+v", g)
	}

	s, err = c.Served(ctx, "multi.example.com", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if g := authdns.Compare(s.A, addrs("192.0.2.2", "192.0.2.1")); !g.InSync() || !slices.Equal(g.Union, addrs("192.0.2.1", "192.0.2.2")) {
		t.Errorf("multi: got %+v", g)
	}
	if len(s.AAAA) != 0 {
		t.Errorf("AAAA asked although not wanted: %+v", s.AAAA)
	}

	s, err = c.Served(ctx, "missing.example.com", true, true)
	if err != nil {
		t.Fatal(err)
	}
	if g := authdns.Compare(s.A, nil); g.Answered != 1 || len(g.Union) != 0 {
		t.Errorf("missing: got %+v, want one server answering nothing", g)
	}

	if _, err := c.Served(ctx, "alias.example.com", true, true); !errors.Is(err, authdns.ErrCNAME) {
		t.Errorf("alias: got %v, want ErrCNAME", err)
	}

	// Not authoritative for another zone: REFUSED is an error, not
	// "no records".
	if _, _, err := c.Query(ctx, srv.Addr, "derp.example.net", dns.TypeA); err == nil {
		t.Errorf("query outside the zone: got no error")
	}
}

// TestTruncation checks the retry over TCP with the Cloudflare fake, which
// can force TC on UDP.
func TestTruncation(t *testing.T) {
	cf := cloudflaretest.New(t, cloudflaretest.Options{})
	cf.AddZone("example.com")
	cf.AddRecord("example.com", "derp", "A", "203.0.113.9", 60, false)
	addr := cf.StartDNS(t, cloudflaretest.DNSOptions{})
	cf.ForceTruncation(true)
	c := &authdns.Checker{Resolvers: []netip.AddrPort{addr}, Port: addr.Port(), Timeout: 2 * time.Second}
	s, err := c.Served(context.Background(), "derp.example.com", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if g := authdns.Compare(s.A, addrs("203.0.113.9")); !g.InSync() || g.Answered != 2 {
		t.Errorf("A over TCP: got %+v, want both name server names answering 203.0.113.9", g)
	}
}

// TestLame checks that a server that answers without the AA bit (a lame
// delegation, or a resolver where an authoritative server should be) is
// not trusted.
func TestLame(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 192.0.2.1")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	c := &authdns.Checker{Timeout: time.Second}
	_, _, err = c.Query(context.Background(), pc.LocalAddr().(*net.UDPAddr).AddrPort(), "derp.example.com", dns.TypeA)
	if err == nil || !strings.Contains(err.Error(), "not authoritative") {
		t.Errorf("got %v, want a not-authoritative error", err)
	}
}
