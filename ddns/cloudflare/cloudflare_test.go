package cloudflare

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/cloudflaretest"
	"github.com/libdns/libdns"
)

// fakeSleep records waits instead of sleeping.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	return ctx.Err()
}

func options(fake *cloudflaretest.Server) (apiclient.Options, *fakeSleep) {
	fs := &fakeSleep{}
	return apiclient.Options{HTTP: fake.Client(), MaxWait: 30 * time.Second, Sleep: fs.sleep}, fs
}

func setup(t *testing.T) (*cloudflaretest.Server, string) {
	fake := cloudflaretest.New(t, cloudflaretest.Options{Logf: t.Logf})
	fake.AddZone("example.com")
	fake.AddRecord("example.com", "www", "A", "192.0.2.80", 300, false)
	return fake, fake.AddToken(cloudflaretest.Token{})
}

func TestCheckToken(t *testing.T) {
	fake, good := setup(t)
	fake.AddZone("example.org")
	disabled := fake.AddToken(cloudflaretest.Token{Status: "disabled"})
	expired := fake.AddToken(cloudflaretest.Token{Status: "expired"})
	otherZone := fake.AddToken(cloudflaretest.Token{Zones: []string{"example.org"}})
	tests := []struct {
		name, token, host string
		wantErr           string // substring; "" = success
	}{
		{"good", good, "", ""},
		{"good with zone", good, "derp.example.com", ""},
		{"deep name", good, "a.b.derp.example.com", ""},
		{"empty", "  ", "", "empty"},
		{"with Bearer", "Bearer " + good, "", "without the word"},
		{"malformed", "abc", "", "token's format"},
		{"global key", strings.Repeat("a", 37), "", "token's format"},
		{"unknown", strings.Repeat("Z", 40), "", "does not accept this API token"},
		{"disabled", disabled, "", "disabled"},
		{"expired", expired, "", "expired"},
		{"token for another zone", otherZone, "derp.example.com", "no zone for derp.example.com"},
		{"zone not in account", good, "derp.example.net", "no zone for derp.example.net"},
	}
	for _, tt := range tests {
		o, _ := options(fake)
		err := New(tt.token, o).Check(context.Background(), tt.host)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: got %v, want success", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestZoneFor(t *testing.T) {
	fake, tok := setup(t)
	o, _ := options(fake)
	p := New(tok, o)
	ctx := context.Background()
	z, err := p.ZoneFor(ctx, "derp.home.example.com.")
	if err != nil || z != "example.com." {
		t.Fatalf("ZoneFor: got %q, %v; want example.com.", z, err)
	}
	n := fake.Requests()
	if z, err := p.ZoneFor(ctx, "derp.home.example.com"); err != nil || z != "example.com." {
		t.Fatalf("ZoneFor again: got %q, %v", z, err)
	}
	if fake.Requests() != n {
		t.Errorf("second ZoneFor made %d requests, want 0 (cached)", fake.Requests()-n)
	}
	fake.AddZone("example.net")
	fake.SetZoneStatus("example.net", "pending")
	if _, err := p.ZoneFor(ctx, "derp.example.net"); err == nil || !strings.Contains(err.Error(), "not active") {
		t.Errorf("pending zone: got %v, want an error saying it is not active", err)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestSetRecords(t *testing.T) {
	fake, tok := setup(t)
	o, _ := options(fake)
	p := New(tok, o)
	ctx := context.Background()
	set := func(ip string) error {
		_, err := p.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: addr(ip)}})
		return err
	}
	if err := set("203.0.113.9"); err != nil {
		t.Fatal(err)
	}
	if err := set("203.0.113.10"); err != nil {
		t.Fatal(err)
	}
	recs := fake.Records("example.com", "derp", "A")
	if len(recs) != 1 || recs[0].Content != "203.0.113.10" || recs[0].TTL != 60 || recs[0].Proxied {
		t.Errorf("derp A: got %+v, want one 203.0.113.10, TTL 60, not proxied", recs)
	}
	if www := fake.Records("example.com", "www", "A"); len(www) != 1 || www[0].Content != "192.0.2.80" {
		t.Errorf("www A was touched: %+v", www)
	}
	if got := p.Client().Requests(); got != int64(fake.Requests()) {
		t.Errorf("client counted %d requests, fake served %d", got, fake.Requests())
	}

	t.Run("duplicates", func(t *testing.T) {
		fake.AddRecord("example.com", "dup", "A", "192.0.2.1", 60, false)
		fake.AddRecord("example.com", "dup", "A", "192.0.2.2", 60, false)
		_, err := p.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "dup", TTL: time.Minute, IP: addr("203.0.113.9")}})
		if err == nil || !strings.Contains(err.Error(), "several records") {
			t.Errorf("got %v, want an error about several records", err)
		}
		if got := len(fake.Records("example.com", "dup", "A")); got != 2 {
			t.Errorf("dup records: got %d, want 2 untouched", got)
		}
	})
	t.Run("read-only token", func(t *testing.T) {
		ro := New(fake.AddToken(cloudflaretest.Token{ReadOnly: true}), o)
		_, err := ro.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: addr("198.51.100.1")}})
		var ae *APIError
		if !errors.As(err, &ae) || !ae.Has(10000) || !strings.Contains(err.Error(), "Zone → DNS → Edit") {
			t.Errorf("got %v, want APIError 10000 asking for DNS edit permission", err)
		}
		if got := fake.Records("example.com", "derp", "A")[0].Content; got != "203.0.113.10" {
			t.Errorf("derp A: got %s, want unchanged 203.0.113.10", got)
		}
	})
	t.Run("bad TTL", func(t *testing.T) {
		_, err := p.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: 30 * time.Second, IP: addr("198.51.100.1")}})
		if err == nil || !strings.Contains(err.Error(), "TTL") {
			t.Errorf("got %v, want a TTL error", err)
		}
	})
	t.Run("delete guard", func(t *testing.T) {
		for _, r := range []libdns.Record{
			libdns.Address{Name: "derp", IP: addr("203.0.113.10")},
			libdns.Address{Name: "derp"}, // zero IP: libdns would delete every A
			libdns.RR{Name: "derp", Type: "AAAA"},
			libdns.TXT{Name: "_acme-challenge"},
		} {
			if _, err := p.DeleteRecords(ctx, "example.com.", []libdns.Record{r}); err == nil {
				t.Errorf("DeleteRecords(%#v): got no error", r)
			}
		}
		if got := len(fake.Records("example.com", "derp", "A")); got != 1 {
			t.Errorf("derp A records: got %d, want 1", got)
		}
	})
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	rec := []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: addr("203.0.113.9")}}

	t.Run("429 honours Retry-After", func(t *testing.T) {
		fake, tok := setup(t)
		o, fs := options(fake)
		fake.FailNext(1, cloudflaretest.Fault{Status: 429, RetryAfter: "3"})
		if _, err := New(tok, o).SetRecords(ctx, "example.com.", rec); err != nil {
			t.Fatal(err)
		}
		if len(fs.waits) == 0 || fs.waits[0] != 3*time.Second {
			t.Errorf("waits: got %v, want 3s first (Retry-After)", fs.waits)
		}
	})
	t.Run("long Retry-After blocks further calls", func(t *testing.T) {
		fake, tok := setup(t)
		o, _ := options(fake)
		fake.FailNext(1, cloudflaretest.Fault{Status: 429, RetryAfter: "300"})
		p := New(tok, o)
		_, err := p.SetRecords(ctx, "example.com.", rec)
		var rl *apiclient.RateLimitError
		var ae *APIError
		if !errors.As(err, &rl) || rl.RetryAfter != 300*time.Second || !errors.As(err, &ae) || ae.Status != 429 {
			t.Fatalf("got %v, want a RateLimitError of 5m over a 429 APIError", err)
		}
		if !strings.Contains(err.Error(), "rate-limiting") {
			t.Errorf("got %q, want it to say Cloudflare is rate-limiting", err)
		}
		n := fake.Requests()
		if _, err := p.SetRecords(ctx, "example.com.", rec); err == nil {
			t.Errorf("second call while blocked: got no error")
		}
		if fake.Requests() != n {
			t.Errorf("a blocked client sent %d requests, want 0", fake.Requests()-n)
		}
		if got := len(fake.Records("example.com", "derp", "A")); got != 0 {
			t.Errorf("records: got %d, want 0", got)
		}
	})
	t.Run("5xx backs off", func(t *testing.T) {
		fake, tok := setup(t)
		o, fs := options(fake)
		fake.FailNext(2, cloudflaretest.Fault{Status: 503})
		if _, err := New(tok, o).SetRecords(ctx, "example.com.", rec); err != nil {
			t.Fatal(err)
		}
		if len(fs.waits) != 2 || fs.waits[0] != time.Second || fs.waits[1] != 2*time.Second {
			t.Errorf("waits: got %v, want [1s 2s]", fs.waits)
		}
	})
	t.Run("down", func(t *testing.T) {
		fake, tok := setup(t)
		o, _ := options(fake)
		fake.SetDown(&cloudflaretest.Fault{Status: 502})
		_, err := New(tok, o).SetRecords(ctx, "example.com.", rec)
		if err == nil || !strings.Contains(err.Error(), "having trouble") {
			t.Errorf("got %v, want a plain error about Cloudflare's trouble", err)
		}
		if got := fake.Requests(); got != 4 {
			t.Errorf("requests: got %d, want 4 (1 + 3 retries)", got)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		fake, tok := setup(t)
		o, _ := options(fake)
		fake.AddRecord("example.com", "derp", "A", "192.0.2.1", 60, false)
		fake.SetDown(&cloudflaretest.Fault{Status: 200, Body: "<html><body>Bad gateway</body></html>", ContentType: "text/html"})
		_, err := New(tok, o).SetRecords(ctx, "example.com.", rec)
		if err == nil || !strings.Contains(err.Error(), "not its API's JSON") {
			t.Errorf("got %v, want an error about a non-JSON answer", err)
		}
		fake.SetDown(nil)
		if got := fake.Records("example.com", "derp", "A"); len(got) != 1 || got[0].Content != "192.0.2.1" {
			t.Errorf("derp A: got %+v, want 192.0.2.1 untouched", got)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		fake, tok := setup(t)
		o, fs := options(fake)
		fake.Close()
		_, err := New(tok, o).SetRecords(ctx, "example.com.", rec)
		if err == nil || !strings.Contains(err.Error(), "calling Cloudflare") {
			t.Errorf("got %v, want a connection error", err)
		}
		if len(fs.waits) != 3 {
			t.Errorf("waits: got %v, want 3 backoffs", fs.waits)
		}
	})
}

func TestBudget(t *testing.T) {
	fake, tok := setup(t)
	p := New(tok, apiclient.Options{HTTP: fake.Client(), Budget: 30, MaxWait: time.Millisecond})
	ctx := context.Background()
	var errs int
	for range 10 {
		if err := p.Check(ctx, ""); err != nil {
			errs++
			if !strings.Contains(err.Error(), "budget") {
				t.Errorf("got %v, want a budget error", err)
			}
		}
	}
	// Budget 30 per 5 minutes allows a burst of 3 and then one request
	// every 10 s.
	if got := fake.Requests(); got != 3 {
		t.Errorf("requests sent: got %d, want 3", got)
	}
	if errs != 7 {
		t.Errorf("refused calls: got %d, want 7", errs)
	}
}
