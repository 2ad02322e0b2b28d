package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/cloudflaretest"
	"github.com/homederp/homederp/ddns/internal/providertest"
	"github.com/libdns/libdns"
)

// story is Cloudflare at its fake (see setup), for the story every API
// provider must pass. Records are DNS-only, as the provider makes them.
func story(t *testing.T) providertest.Env[cloudflaretest.Fault] {
	fake, tok := setup(t)
	return providertest.Env[cloudflaretest.Fault]{
		Vendor: vendor.Name,
		Fake:   fake,
		HTTP:   fake.Client(),
		New:    func(o apiclient.Options) providertest.Provider { return New(tok, o) },
		ReadOnly: func(o apiclient.Options) providertest.Provider {
			return New(fake.AddToken(cloudflaretest.Token{ReadOnly: true}), o)
		},
		TTL: 60,
		AddRecord: func(name, typ, value string) {
			fake.AddRecord(providertest.Zone, name, typ, value, 60, false)
		},
		Records: func(name, typ string) []string {
			var out []string
			for _, r := range fake.Records(providertest.Zone, name, typ) {
				if !r.Proxied {
					out = append(out, fmt.Sprintf("%s ttl %d", strings.Trim(r.Content, `"`), r.TTL))
				}
			}
			return out
		},
		ReadOnlyErr: func(t *testing.T, err error) {
			var ae *APIError
			if !errors.As(err, &ae) || !ae.Has(10000) || !strings.Contains(err.Error(), "Zone → DNS → Edit and Zone → Zone → Read for example.com") {
				t.Errorf("got %v, want APIError 10000 asking for DNS edit permission for example.com", err)
			}
		},
	}
}

// setup starts a fake holding example.com with "www A 192.0.2.80" and
// returns it and a token of the whole account.
func setup(t *testing.T) (*cloudflaretest.Server, string) {
	fake := cloudflaretest.New(t, cloudflaretest.Options{Logf: t.Logf})
	fake.AddZone("example.com")
	fake.AddRecord("example.com", "www", "A", "192.0.2.80", 60, false)
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
		o, _ := providertest.Options(fake.Client())
		providertest.WantErr(t, tt.name, New(tt.token, o).Check(context.Background(), tt.host), tt.wantErr)
	}
}

func TestZoneFor(t *testing.T) {
	providertest.ZoneFor(t, story(t))
	fake, tok := setup(t)
	fake.AddZone("example.net")
	fake.SetZoneStatus("example.net", "pending")
	o, _ := providertest.Options(fake.Client())
	_, err := New(tok, o).ZoneFor(context.Background(), "derp.example.net")
	providertest.WantErr(t, "pending zone", err, "not active")
}

func TestSetRecords(t *testing.T) {
	env := story(t)
	providertest.SetRecords(t, env)
	t.Run("bad TTL", func(t *testing.T) {
		o, _ := providertest.Options(env.HTTP)
		_, err := env.New(o).SetRecords(context.Background(), "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: 30 * time.Second, IP: netip.MustParseAddr("198.51.100.1")}})
		providertest.WantErr(t, "TTL 30 s", err, "TTL")
	})
}

func TestRetries(t *testing.T) {
	providertest.Retries(t, story, []providertest.RetryCase[cloudflaretest.Fault]{
		{Name: "5xx backs off", Fault: cloudflaretest.Fault{Status: 503}, N: 2, Waits: "[1s 2s]"},
		{Name: "down", Fault: cloudflaretest.Fault{Status: 502}, WantErr: "having trouble", Waits: "[1s 2s 4s]", Requests: 4},
		{Name: "garbage", Fault: cloudflaretest.Fault{Status: 200, Body: "<html><body>Bad gateway</body></html>", ContentType: "text/html"}, WantErr: "not its API's JSON", Waits: "[]", Requests: 1},
	})
}

// TestRetryAfter: Cloudflare's 429 says how long to wait; a wait longer
// than the client's MaxWait blocks every call until it is over.
func TestRetryAfter(t *testing.T) {
	ctx := context.Background()
	rec := []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: netip.MustParseAddr("203.0.113.9")}}
	t.Run("429 honours Retry-After", func(t *testing.T) {
		fake, tok := setup(t)
		o, waits := providertest.Options(fake.Client())
		fake.FailNext(1, cloudflaretest.Fault{Status: 429, RetryAfter: "3"})
		if _, err := New(tok, o).SetRecords(ctx, "example.com.", rec); err != nil {
			t.Fatal(err)
		}
		if w := waits.All(); len(w) == 0 || w[0] != 3*time.Second {
			t.Errorf("waits: got %v, want 3s first (Retry-After)", w)
		}
	})
	t.Run("long Retry-After blocks further calls", func(t *testing.T) {
		fake, tok := setup(t)
		o, _ := providertest.Options(fake.Client())
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
