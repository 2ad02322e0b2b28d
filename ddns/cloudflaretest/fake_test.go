package cloudflaretest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/ipclass"
	cf "github.com/libdns/cloudflare"
	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// TestLibdnsRoundTrip drives the fake with libdns/cloudflare itself, so a
// change in the library's calls shows up here.
func TestLibdnsRoundTrip(t *testing.T) {
	s := New(t, Options{})
	s.AddZone("example.com")
	s.AddZone("example.net")
	tok := s.AddToken(Token{})
	p := &cf.Provider{APIToken: tok, HTTPClient: s.Client()}
	ctx := context.Background()

	// 250 records: GetRecords must follow result_info over 3 pages.
	for i := range 250 {
		s.AddRecord("example.com", fmt.Sprintf("host%d", i), "A", fmt.Sprintf("192.0.2.%d", i%250+1), 300, false)
	}
	recs, err := p.GetRecords(ctx, "example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(recs), 250; got != want {
		t.Errorf("GetRecords: got %d records, want %d", got, want)
	}
	if got, want := s.Requests("GET /zones/:zone/dns_records"), 3; got != want {
		t.Errorf("record list requests: got %d, want %d (pages of 100)", got, want)
	}

	// Create, then update the same record (PATCH), TTL 60, not proxied.
	addr := netip.MustParseAddr("203.0.113.9")
	if _, err := p.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: addr}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: netip.MustParseAddr("203.0.113.10")}}); err != nil {
		t.Fatal(err)
	}
	got := s.Records("example.com", "derp", "A")
	if len(got) != 1 || got[0].Content != "203.0.113.10" || got[0].TTL != 60 || got[0].Proxied || got[0].Name != "derp.example.com" {
		t.Errorf("derp A: got %+v, want one record 203.0.113.10 TTL 60 not proxied", got)
	}
	if got, want := s.Requests("POST /zones/:zone/dns_records"), 1; got != want {
		t.Errorf("POSTs: got %d, want %d", got, want)
	}
	if got, want := s.Requests("PATCH /zones/:zone/dns_records/:id"), 1; got != want {
		t.Errorf("PATCHes: got %d, want %d", got, want)
	}

	// A TXT record for ACME, then its deletion by value.
	txt := libdns.TXT{Name: "_acme-challenge.derp", TTL: time.Minute, Text: "abc"}
	if _, err := p.AppendRecords(ctx, "example.com.", []libdns.Record{txt}); err != nil {
		t.Fatal(err)
	}
	if got := s.Records("example.com", "_acme-challenge.derp", "TXT"); len(got) != 1 || got[0].Content != `"abc"` {
		t.Errorf("TXT: got %+v, want content \"abc\" quoted", got)
	}
	if _, err := p.DeleteRecords(ctx, "example.com.", []libdns.Record{txt}); err != nil {
		t.Fatal(err)
	}
	if got := s.Records("example.com", "_acme-challenge.derp", "TXT"); len(got) != 0 {
		t.Errorf("TXT after delete: got %+v, want none", got)
	}

	// Appending an identical record is Cloudflare's 81058.
	if _, err := p.AppendRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: netip.MustParseAddr("203.0.113.10")}}); err == nil || !strings.Contains(err.Error(), "81058") {
		t.Errorf("identical record: got %v, want error 81058", err)
	}
	// A TTL below 60 is 9021.
	if _, err := p.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: 30 * time.Second, IP: addr}}); err == nil || !strings.Contains(err.Error(), "9021") {
		t.Errorf("TTL 30: got %v, want error 9021", err)
	}
}

// api does one raw request and decodes the envelope.
func api(t *testing.T, s *Server, method, path, token string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, "https://api.cloudflare.com/client/v4"+path, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", method, path, b)
	}
	return resp.StatusCode, m, resp.Header
}

func firstCode(m map[string]any) int {
	errs, _ := m["errors"].([]any)
	if len(errs) == 0 {
		return 0
	}
	return int(errs[0].(map[string]any)["code"].(float64))
}

func TestAuthErrors(t *testing.T) {
	s := New(t, Options{RateLimit: 3, RetryAfter: 7})
	s.AddZone("example.com")
	good := s.AddToken(Token{})
	off := s.AddToken(Token{Status: "disabled"})
	unknown := strings.Repeat("A", 40)
	tests := []struct {
		name     string
		path     string
		auth     string
		status   int
		code     int
		verified string
	}{
		{"verify ok", "/user/tokens/verify", "Bearer " + good, 200, 0, "active"},
		{"verify disabled", "/user/tokens/verify", "Bearer " + off, 200, 0, "disabled"},
		{"verify unknown", "/user/tokens/verify", "Bearer " + unknown, 401, 1000, ""},
		{"malformed token", "/zones", "Bearer not a token", 400, 6003, ""},
		{"global key as token", "/zones", "Bearer 0123456789abcdef0123456789abcdef01234", 400, 6003, ""},
		{"unknown token", "/zones", "Bearer " + unknown, 403, 9109, ""},
		{"no header", "/zones", "", 400, 9106, ""},
		{"unknown zone", "/zones/0123/dns_records", "Bearer " + good, 400, 7003, ""},
	}
	for _, tt := range tests {
		status, m, _ := api(t, s, "GET", tt.path, tt.auth)
		if status != tt.status || firstCode(m) != tt.code {
			t.Errorf("%s: got HTTP %d code %d, want HTTP %d code %d (%v)", tt.name, status, firstCode(m), tt.status, tt.code, m)
		}
		if _, ok := m["success"]; !ok {
			t.Errorf("%s: envelope without \"success\": %v", tt.name, m)
		}
		if tt.verified != "" {
			if got := m["result"].(map[string]any)["status"]; got != tt.verified {
				t.Errorf("%s: status got %v, want %v", tt.name, got, tt.verified)
			}
		}
	}
	// The rate limit: the token above made 3 requests already.
	fresh := s.AddToken(Token{})
	for i := range 3 {
		if status, _, _ := api(t, s, "GET", "/zones", "Bearer "+fresh); status != 200 {
			t.Fatalf("request %d: got HTTP %d, want 200", i, status)
		}
	}
	status, m, h := api(t, s, "GET", "/zones", "Bearer "+fresh)
	if status != 429 || firstCode(m) != 971 || h.Get("Retry-After") != "7" {
		t.Errorf("over the limit: got HTTP %d code %d Retry-After %q, want 429 971 7", status, firstCode(m), h.Get("Retry-After"))
	}
}

func TestDNSSide(t *testing.T) {
	s := New(t, Options{})
	s.AddZone("example.com")
	s.AddRecord("example.com", "derp", "A", "203.0.113.9", 60, false)
	s.AddRecord("example.com", "derp", "AAAA", "2001:db8::9", 1, false)
	s.AddRecord("example.com", "www", "A", "203.0.113.80", 60, true)
	s.AddRecord("example.com", "_acme-challenge.derp", "TXT", `"tok"`, 60, false)
	addr := s.StartDNS(t, DNSOptions{})

	q := func(name string, qt uint16, tcp bool) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qt)
		c := &dns.Client{Timeout: 2 * time.Second}
		if tcp {
			c.Net = "tcp"
		}
		r, _, err := c.Exchange(m, addr.String())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}
	r := q("derp.example.com.", dns.TypeA, false)
	if !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "203.0.113.9" || r.Answer[0].Header().Ttl != 60 {
		t.Errorf("derp A: got %v", r)
	}
	if r := q("derp.example.com.", dns.TypeAAAA, false); len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 300 {
		t.Errorf("derp AAAA with automatic TTL: got %v, want TTL 300", r)
	}
	r = q("www.example.com.", dns.TypeA, false)
	if len(r.Answer) != 1 {
		t.Fatalf("www A: got %v", r)
	}
	if a, _ := netip.AddrFromSlice(r.Answer[0].(*dns.A).A.To4()); !ipclass.IsCloudflare(a) {
		t.Errorf("proxied www A: got %v, want an address in Cloudflare's ranges", a)
	}
	if r := q("nothing.example.com.", dns.TypeA, false); r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
		t.Errorf("nothing: got %v, want NXDOMAIN with SOA", r)
	}
	if r := q("derp.example.com.", dns.TypeMX, false); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Errorf("derp MX: got %v, want NODATA with SOA", r)
	}
	if r := q("_acme-challenge.derp.example.com.", dns.TypeTXT, false); len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "tok" {
		t.Errorf("TXT: got %v", r)
	}
	if r := q("example.com.", dns.TypeNS, false); len(r.Answer) != 2 || len(r.Extra) == 0 {
		t.Errorf("NS: got %v, want two NS with glue", r)
	}
	if r := q("ada.ns.cloudflare.com.", dns.TypeA, false); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
		t.Errorf("NS address: got %v", r)
	}
	s.ForceTruncation(true)
	if r := q("derp.example.com.", dns.TypeA, false); !r.Truncated {
		t.Errorf("forced truncation over UDP: got %v", r)
	}
	if r := q("derp.example.com.", dns.TypeA, true); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("over TCP: got %v", r)
	}
	s.ForceTruncation(false)

	// A frozen (stale) server keeps the old answer.
	s.FreezeDNS()
	for _, rec := range s.Records("example.com", "derp", "A") {
		s.mu.Lock()
		for _, r := range s.records {
			if r.ID == rec.ID {
				r.Content = "198.51.100.1"
			}
		}
		s.mu.Unlock()
	}
	if r := q("derp.example.com.", dns.TypeA, false); r.Answer[0].(*dns.A).A.String() != "203.0.113.9" {
		t.Errorf("frozen: got %v, want the old 203.0.113.9", r.Answer)
	}
	s.UnfreezeDNS()
	if r := q("derp.example.com.", dns.TypeA, false); r.Answer[0].(*dns.A).A.String() != "198.51.100.1" {
		t.Errorf("unfrozen: got %v, want 198.51.100.1", r.Answer)
	}
}
