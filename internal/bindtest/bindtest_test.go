package bindtest

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestStartAndUpdate starts named, reads a record from the zone file and
// changes it with a TSIG-signed update, as the RFC 2136 and ACME tests do.
func TestStartAndUpdate(t *testing.T) {
	s := Start(t, Options{Zone: "example.com.", Records: []string{"derp 60 IN A 192.0.2.1"}})

	ask := func() []dns.RR {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion("derp.example.com.", dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, s.Addr.String())
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		if !r.Authoritative {
			t.Errorf("answer is not authoritative")
		}
		return r.Answer
	}
	if got := ask(); len(got) != 1 || got[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("before update: got %v, want 192.0.2.1", got)
	}

	m := new(dns.Msg)
	m.SetUpdate(s.Zone)
	rr, _ := dns.NewRR("derp.example.com. 60 IN A 198.51.100.7")
	m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "derp.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET}}})
	m.Insert([]dns.RR{rr})
	m.SetTsig(s.KeyName, s.KeyAlgorithm, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigSecret: map[string]string{s.KeyName: s.Secret}}
	r, _, err := c.Exchange(m, s.Addr.String())
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update: got %s, want NOERROR", dns.RcodeToString[r.Rcode])
	}
	if got := ask(); len(got) != 1 || got[0].(*dns.A).A.String() != "198.51.100.7" {
		t.Fatalf("after update: got %v, want 198.51.100.7", got)
	}
}
