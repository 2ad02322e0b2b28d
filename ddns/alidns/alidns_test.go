package alidns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/alidnstest"
	"github.com/homederp/homederp/ddns/apiclient"
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

func options(fake *alidnstest.Server) (apiclient.Options, *fakeSleep) {
	fs := &fakeSleep{}
	return apiclient.Options{HTTP: fake.Client(), MaxWait: 30 * time.Second, Sleep: fs.sleep}, fs
}

type key struct{ id, secret string }

func (k key) provider(o apiclient.Options) *Provider { return New(k.id, k.secret, o) }

func setup(t *testing.T, o alidnstest.Options) (*alidnstest.Server, key) {
	fake := alidnstest.New(t, o)
	fake.AddDomain("example.com")
	fake.AddRecord("example.com", "www", "A", "192.0.2.80", 600)
	id, secret := fake.AddKey(alidnstest.Key{})
	return fake, key{id, secret}
}

func TestCheck(t *testing.T) {
	fake, good := setup(t, alidnstest.Options{})
	fake.AddDomain("example.org")
	var disabled, other, scoped key
	disabled.id, disabled.secret = fake.AddKey(alidnstest.Key{})
	fake.DisableKey(disabled.id)
	other.id, other.secret = fake.AddKey(alidnstest.Key{Domains: []string{"example.org"}})
	scoped.id, scoped.secret = fake.AddKey(alidnstest.Key{Domains: []string{"example.com"}})
	tests := []struct {
		name    string
		k       key
		host    string
		wantErr string // substring; "" = success
	}{
		{"good", good, "", ""},
		{"good with zone", good, "derp.example.com", ""},
		{"deep name", good, "a.b.derp.example.com", ""},
		{"apex", good, "example.com", ""},
		{"empty secret", key{good.id, ""}, "", "both the AccessKey ID and the AccessKey secret"},
		{"STS key", key{"STS.NUgYrLnoC37mZZCNnAbez2MNc", good.secret}, "", "temporary STS AccessKey"},
		{"unknown ID", key{"LTAI" + strings.Repeat("x", 20), good.secret}, "", "does not know this AccessKey ID"},
		{"wrong secret", key{good.id, strings.Repeat("y", 30)}, "", "secret does not belong to this AccessKey ID"},
		{"disabled key", disabled, "", "AccessKey is disabled"},
		{"key for this domain only", scoped, "derp.example.com", ""},
		{"key for another domain", other, "derp.example.com", "no zone for derp.example.com that this AliDNS key may see"},
		{"domain not in account", good, "derp.example.net", "no zone for derp.example.net"},
	}
	for _, tt := range tests {
		o, _ := options(fake)
		err := tt.k.provider(o).Check(context.Background(), tt.host)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: got %v, want success", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
	}
	if fake.Writes() != 0 {
		t.Errorf("checks wrote %d records, want 0", fake.Writes())
	}
}

// TestClockSkew: a box whose clock is far off hears that its clock is
// wrong, not that its key is.
func TestClockSkew(t *testing.T) {
	fake, k := setup(t, alidnstest.Options{Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	o, _ := options(fake)
	err := k.provider(o).Check(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "clock") || !strings.Contains(err.Error(), "InvalidTimeStamp.Expired") {
		t.Errorf("got %v, want an error about the box's clock", err)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestSetRecords(t *testing.T) {
	fake, k := setup(t, alidnstest.Options{})
	fake.AddRecordOnLine("example.com", "derp", "AAAA", "2001:db8::77", 600, "telecom")
	o, _ := options(fake)
	p := k.provider(o)
	ctx := context.Background()
	set := func(ip string) error {
		_, err := p.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: addr(ip)}})
		return err
	}
	defaultLine := func() []alidnstest.Record {
		var out []alidnstest.Record
		for _, r := range fake.Records("example.com", "derp", "AAAA") {
			if r.Line == DefaultLine {
				out = append(out, r)
			}
		}
		return out
	}
	if err := set("2001:db8::9"); err != nil {
		t.Fatal(err)
	}
	if err := set("2001:db8::10"); err != nil {
		t.Fatal(err)
	}
	if recs := defaultLine(); len(recs) != 1 || recs[0].Value != "2001:db8::10" || recs[0].TTL != 600 {
		t.Errorf("derp AAAA: got %+v, want one 2001:db8::10 with TTL 600 (raised from 60 to the plan's MinTtl)", recs)
	}
	if got := len(fake.Records("example.com", "derp", "AAAA")); got != 2 {
		t.Errorf("derp AAAA on all lines: got %d, want the telecom line's record kept", got)
	}
	if www := fake.Records("example.com", "www", "A"); len(www) != 1 || www[0].Value != "192.0.2.80" {
		t.Errorf("www A was touched: %+v", www)
	}
	if got := p.Client().Requests(); got != int64(fake.Requests()) {
		t.Errorf("client counted %d requests, fake served %d", got, fake.Requests())
	}
	t.Run("no change writes nothing", func(t *testing.T) {
		w := fake.Writes()
		if err := set("2001:db8::10"); err != nil {
			t.Fatalf("setting the value that is there: %v (AliDNS refuses an update that changes nothing)", err)
		}
		if fake.Writes() != w {
			t.Errorf("writes: got %d more, want 0", fake.Writes()-w)
		}
	})
	t.Run("duplicates", func(t *testing.T) {
		fake.AddRecord("example.com", "dup", "AAAA", "2001:db8::1", 600)
		fake.AddRecord("example.com", "dup", "AAAA", "2001:db8::2", 600)
		_, err := p.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "dup", IP: addr("2001:db8::3")}})
		if err == nil || !strings.Contains(err.Error(), "never deletes") {
			t.Errorf("got %v, want an error about several records", err)
		}
		if got := len(fake.Records("example.com", "dup", "AAAA")); got != 2 {
			t.Errorf("dup records: got %d, want 2 untouched", got)
		}
	})
	t.Run("read-only key", func(t *testing.T) {
		id, secret := fake.AddKey(alidnstest.Key{ReadOnly: true})
		_, err := New(id, secret, o).SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", IP: addr("2001:db8::66")}})
		if err == nil || !strings.Contains(err.Error(), "AliyunDNSFullAccess") || !strings.Contains(err.Error(), "Forbidden.RAM") {
			t.Errorf("got %v, want an error asking for DNS write access", err)
		}
		if got := defaultLine()[0].Value; got != "2001:db8::10" {
			t.Errorf("derp AAAA: got %s, want unchanged", got)
		}
	})
	t.Run("ACME challenge", func(t *testing.T) {
		txt := libdns.TXT{Name: "_acme-challenge.derp", Text: "token-1"}
		if _, err := p.AppendRecords(ctx, "example.com.", []libdns.Record{txt}); err != nil {
			t.Fatal(err)
		}
		fake.AddRecord("example.com", "_acme-challenge.derp", "TXT", "someone-elses", 600)
		if _, err := p.DeleteRecords(ctx, "example.com.", []libdns.Record{txt}); err != nil {
			t.Fatal(err)
		}
		if recs := fake.Records("example.com", "_acme-challenge.derp", "TXT"); len(recs) != 1 || recs[0].Value != "someone-elses" {
			t.Errorf("challenge TXT afterwards: got %+v, want only the other one", recs)
		}
	})
	t.Run("delete guard", func(t *testing.T) {
		for _, r := range []libdns.Record{
			libdns.Address{Name: "derp", IP: addr("2001:db8::10")},
			libdns.TXT{Name: "_acme-challenge"},
		} {
			if _, err := p.DeleteRecords(ctx, "example.com.", []libdns.Record{r}); err == nil {
				t.Errorf("DeleteRecords(%#v): got no error", r)
			}
		}
		if got := len(defaultLine()); got != 1 {
			t.Errorf("derp AAAA records: got %d, want 1", got)
		}
	})
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	rec := []libdns.Record{libdns.Address{Name: "derp", IP: addr("203.0.113.9")}}
	tests := []struct {
		name      string
		fault     alidnstest.Fault
		n         int // FailNext count; 0 = SetDown
		wantErr   string
		wantWaits string
		requests  int // 0 = do not check
	}{
		{"throttled once", alidnstest.Fault{Code: "Throttling.User"}, 1, "", "[1s]", 0},
		{"unavailable twice", alidnstest.Fault{Status: 503, Code: "ServiceUnavailable"}, 2, "", "[1s 2s]", 0},
		{"down", alidnstest.Fault{Status: 503, Code: "ServiceUnavailable"}, 0, "having trouble", "[1s 2s 4s]", 4},
		{"throttled for long", alidnstest.Fault{Code: "Throttling.Api"}, 0, "rate-limiting this account", "[1s 2s 4s]", 4},
		{"proxy error page", alidnstest.Fault{Status: 502, Body: "<html>502 Bad Gateway</html>"}, 0, "having trouble (HTTP 502", "[1s 2s 4s]", 4},
		{"garbage", alidnstest.Fault{Status: 200, Body: "<html>portal</html>"}, 0, "not its API's JSON", "[]", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, k := setup(t, alidnstest.Options{})
			fake.AddRecord("example.com", "derp", "A", "192.0.2.1", 600)
			o, fs := options(fake)
			p := k.provider(o)
			if _, err := p.ZoneFor(ctx, "derp.example.com"); err != nil {
				t.Fatal(err)
			}
			before := fake.Requests()
			if tt.n > 0 {
				fake.FailNext(tt.n, tt.fault)
			} else {
				fake.SetDown(&tt.fault)
			}
			_, err := p.SetRecords(ctx, "example.com.", rec)
			fake.SetDown(nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want success after retries", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
			if got := fmt.Sprint(fs.waits); got != tt.wantWaits {
				t.Errorf("waits: got %s, want %s", got, tt.wantWaits)
			}
			if got := fake.Requests() - before; tt.requests > 0 && got != tt.requests {
				t.Errorf("requests: got %d, want %d", got, tt.requests)
			}
			want := "203.0.113.9"
			if tt.wantErr != "" {
				want = "192.0.2.1"
			}
			if recs := fake.Records("example.com", "derp", "A"); len(recs) != 1 || recs[0].Value != want {
				t.Errorf("derp A afterwards: got %+v, want exactly one with %s", recs, want)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		fake, k := setup(t, alidnstest.Options{})
		o, fs := options(fake)
		fake.Close()
		_, err := k.provider(o).SetRecords(ctx, "example.com.", rec)
		if err == nil || !strings.Contains(err.Error(), "calling AliDNS") {
			t.Errorf("got %v, want a connection error", err)
		}
		if len(fs.waits) != 3 {
			t.Errorf("waits: got %v, want 3 backoffs", fs.waits)
		}
	})
}

// TestRateLimit: past the fake's per-second limit AliDNS answers
// Throttling.User (HTTP 400), which the client treats as throttling, and
// every retry carries a fresh signature nonce (a reused one is refused).
func TestRateLimit(t *testing.T) {
	fake, k := setup(t, alidnstest.Options{RateLimit: 2})
	o, _ := options(fake)
	o.MaxRetries = 1
	p := k.provider(o)
	var err error
	for range 4 {
		if err = p.Check(context.Background(), ""); err != nil {
			break
		}
	}
	var rl *apiclient.RateLimitError
	if !errors.As(err, &rl) || !strings.Contains(err.Error(), "Throttling.User") {
		t.Errorf("got %v, want a RateLimitError with AliDNS's Throttling.User", err)
	}
	if strings.Contains(fmt.Sprint(err), "SignatureNonceUsed") {
		t.Errorf("a retry reused the signature nonce: %v", err)
	}
}
