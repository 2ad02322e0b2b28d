package tencentcloudtest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSignatureVector checks the fake's TC3-HMAC-SHA256 verification
// against the worked example of Tencent Cloud's "Signature v3"
// documentation (CVM DescribeInstances, 2019-02-25), so that the fake
// checks what Tencent Cloud checks and not merely what homederp's signer
// does.
func TestSignatureVector(t *testing.T) {
	body := `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	r, err := http.NewRequest("POST", "https://cvm.tencentcloudapi.com/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	const auth = "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
	sig, ok := parseAuth(auth)
	if !ok {
		t.Fatalf("parseAuth(%q) failed", auth)
	}
	got := expectedSignature(r, []byte(body), sig, "Gu5t9xGARNpq86cd98joQYCN3*******", "1551113065")
	if got != sig.sig {
		t.Errorf("signature: got %s, want %s (the documented one)", got, sig.sig)
	}
	if d := time.Unix(1551113065, 0).UTC().Format(time.DateOnly); d != sig.date {
		t.Errorf("credential date: got %s, want %s", sig.date, d)
	}
}

// TestDNSSide: the DNS side serves the default line's enabled records of
// enabled domains, and nothing of a paused one.
func TestDNSSide(t *testing.T) {
	s := New(t, Options{})
	s.AddDomain("example.com")
	s.AddRecord("example.com", "derp", "A", "203.0.113.9", 600)
	s.AddRecordOnLine("example.com", "derp", "A", "198.51.100.77", 600, "电信")
	s.AddRecord("example.com", "@", "TXT", "v=spf1 -all", 600)
	addr := s.StartDNS(t, DNSOptions{})
	q := func(name string, typ uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, typ)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr.String())
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		return r
	}
	if r := q("derp.example.com.", dns.TypeA); !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "203.0.113.9" || r.Answer[0].Header().Ttl != 600 {
		t.Errorf("derp A: got %v, want only the default line's 203.0.113.9 with TTL 600", r.Answer)
	}
	if r := q("example.com.", dns.TypeTXT); len(r.Answer) != 1 {
		t.Errorf("apex TXT: got %v", r.Answer)
	}
	if r := q("example.com.", dns.TypeNS); len(r.Answer) != 2 || r.Answer[0].(*dns.NS).Ns != "f1g1ns1.dnspod.net." {
		t.Errorf("NS: got %v", r.Answer)
	}
	if r := q("nope.example.com.", dns.TypeA); r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
		t.Errorf("missing name: got rcode %d authority %v, want NXDOMAIN with the SOA", r.Rcode, r.Ns)
	}
	s.SetDomain("example.com", func(d *Domain) { d.Status = "PAUSE" })
	if r := q("derp.example.com.", dns.TypeA); len(r.Answer) != 0 {
		t.Errorf("paused domain: got %v, want no answer", r.Answer)
	}
}
