package tencentcloud

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/tencentcloudtest"
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

func options(fake *tencentcloudtest.Server) (apiclient.Options, *fakeSleep) {
	fs := &fakeSleep{}
	return apiclient.Options{HTTP: fake.Client(), MaxWait: 30 * time.Second, Sleep: fs.sleep}, fs
}

type key struct{ id, secret string }

func setup(t *testing.T, o tencentcloudtest.Options) (*tencentcloudtest.Server, key) {
	fake := tencentcloudtest.New(t, o)
	fake.AddDomain("example.com")
	fake.AddRecord("example.com", "www", "A", "192.0.2.80", 600)
	id, secret := fake.AddKey(tencentcloudtest.Key{})
	return fake, key{id, secret}
}

func (k key) provider(o apiclient.Options) *Provider { return New(k.id, k.secret, o) }

func TestCheck(t *testing.T) {
	fake, good := setup(t, tencentcloudtest.Options{})
	fake.AddDomain("example.org")
	fake.AddDomain("paused.example")
	fake.SetDomain("paused.example", func(d *tencentcloudtest.Domain) { d.Status = "PAUSE" })
	fake.AddDomain("elsewhere.example")
	fake.SetDomain("elsewhere.example", func(d *tencentcloudtest.Domain) { d.DNSStatus = "DNSERROR" })
	var disabled key
	disabled.id, disabled.secret = fake.AddKey(tencentcloudtest.Key{})
	fake.DisableKey(disabled.id)
	var other, scoped key
	other.id, other.secret = fake.AddKey(tencentcloudtest.Key{Domains: []string{"example.org"}})
	scoped.id, scoped.secret = fake.AddKey(tencentcloudtest.Key{Domains: []string{"example.com"}})

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
		{"empty key", key{good.id, " "}, "", "both the SecretId and the SecretKey"},
		{"DNSPod token", key{"123456", "0123456789abcdef0123456789abcdef"}, "", "DNSPod Token"},
		{"unknown SecretId", key{"AKID" + strings.Repeat("x", 32), good.secret}, "", "does not know this SecretId"},
		{"wrong SecretKey", key{good.id, strings.Repeat("y", 32)}, "", "SecretKey does not belong to this SecretId"},
		{"disabled key", disabled, "", "does not know this SecretId"},
		{"key for this domain only", scoped, "derp.example.com", ""},
		{"key for another domain", other, "derp.example.com", "no zone for derp.example.com that this DNSPod key may see"},
		{"domain not in account", good, "derp.example.net", "no zone for derp.example.net"},
		{"paused domain", good, "derp.paused.example", "paused at DNSPod"},
		{"registrar not pointing at DNSPod", good, "derp.elsewhere.example", "f1g1ns1.dnspod.net and f1g1ns2.dnspod.net"},
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

// TestClockSkew: a box whose clock is off by more than 5 minutes hears
// that its clock is wrong, not that its key is.
func TestClockSkew(t *testing.T) {
	fake, k := setup(t, tencentcloudtest.Options{Now: func() time.Time { return time.Now().Add(7 * time.Minute) }})
	o, _ := options(fake)
	err := k.provider(o).Check(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "clock") || !strings.Contains(err.Error(), "AuthFailure.SignatureExpire") {
		t.Errorf("got %v, want an error about the box's clock", err)
	}
}

func TestZoneFor(t *testing.T) {
	fake, k := setup(t, tencentcloudtest.Options{})
	o, _ := options(fake)
	p := k.provider(o)
	ctx := context.Background()
	if z, err := p.ZoneFor(ctx, "derp.home.example.com."); err != nil || z != "example.com." {
		t.Fatalf("ZoneFor: got %q, %v; want example.com.", z, err)
	}
	if got := fake.RequestsByRoute(); got["DescribeDomainList"] != 1 || got["DescribeDomain"] != 1 || fake.Requests() != 2 {
		t.Errorf("requests: got %v, want one DescribeDomainList and one DescribeDomain", got)
	}
	n := fake.Requests()
	if z, err := p.ZoneFor(ctx, "derp.home.example.com"); err != nil || z != "example.com." {
		t.Fatalf("ZoneFor again: got %q, %v", z, err)
	}
	if fake.Requests() != n {
		t.Errorf("second ZoneFor made %d requests, want 0 (cached)", fake.Requests()-n)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestSetRecords(t *testing.T) {
	fake, k := setup(t, tencentcloudtest.Options{})
	fake.AddRecordOnLine("example.com", "derp", "A", "198.51.100.77", 600, "电信")
	o, _ := options(fake)
	p := k.provider(o)
	ctx := context.Background()
	set := func(ip string) error {
		_, err := p.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: addr(ip)}})
		return err
	}
	defaultLine := func() []tencentcloudtest.Record {
		var out []tencentcloudtest.Record
		for _, r := range fake.Records("example.com", "derp", "A") {
			if r.Line == DefaultLine {
				out = append(out, r)
			}
		}
		return out
	}
	if err := set("203.0.113.9"); err != nil {
		t.Fatal(err)
	}
	if err := set("203.0.113.10"); err != nil {
		t.Fatal(err)
	}
	if recs := defaultLine(); len(recs) != 1 || recs[0].Value != "203.0.113.10" || recs[0].TTL != 600 {
		t.Errorf("derp A: got %+v, want one 203.0.113.10 with TTL 600 (raised from 60 to the free plan's minimum)", recs)
	}
	if recs := fake.Records("example.com", "derp", "A"); len(recs) != 2 {
		t.Errorf("derp A on all lines: got %+v, want the 电信 line's record kept", recs)
	}
	if www := fake.Records("example.com", "www", "A"); len(www) != 1 || www[0].Value != "192.0.2.80" {
		t.Errorf("www A was touched: %+v", www)
	}
	if got := p.Client().Requests(); got != int64(fake.Requests()) {
		t.Errorf("client counted %d requests, fake served %d", got, fake.Requests())
	}
	t.Run("no change writes nothing", func(t *testing.T) {
		w := fake.Writes()
		if err := set("203.0.113.10"); err != nil {
			t.Fatal(err)
		}
		if fake.Writes() != w {
			t.Errorf("writes: got %d more, want 0", fake.Writes()-w)
		}
	})
	t.Run("duplicates", func(t *testing.T) {
		fake.AddRecord("example.com", "dup", "A", "192.0.2.1", 600)
		fake.AddRecord("example.com", "dup", "A", "192.0.2.2", 600)
		_, err := p.SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "dup", TTL: time.Minute, IP: addr("203.0.113.9")}})
		if err == nil || !strings.Contains(err.Error(), "never deletes") {
			t.Errorf("got %v, want an error about several records", err)
		}
		if got := len(fake.Records("example.com", "dup", "A")); got != 2 {
			t.Errorf("dup records: got %d, want 2 untouched", got)
		}
	})
	t.Run("read-only key", func(t *testing.T) {
		id, secret := fake.AddKey(tencentcloudtest.Key{ReadOnly: true})
		_, err := New(id, secret, o).SetRecords(ctx, "example.com.", []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: addr("198.51.100.1")}})
		if err == nil || !strings.Contains(err.Error(), "QcloudDNSPodFullAccess") {
			t.Errorf("got %v, want an error asking for DNSPod write access", err)
		}
		if got := defaultLine()[0].Value; got != "203.0.113.10" {
			t.Errorf("derp A: got %s, want unchanged 203.0.113.10", got)
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
			libdns.Address{Name: "derp", IP: addr("203.0.113.10")},
			libdns.RR{Name: "derp", Type: "AAAA"},
			libdns.TXT{Name: "_acme-challenge"},
		} {
			if _, err := p.DeleteRecords(ctx, "example.com.", []libdns.Record{r}); err == nil {
				t.Errorf("DeleteRecords(%#v): got no error", r)
			}
		}
		if got := len(defaultLine()); got != 1 {
			t.Errorf("derp A records: got %d, want 1", got)
		}
	})
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	rec := []libdns.Record{libdns.Address{Name: "derp", TTL: time.Minute, IP: addr("203.0.113.9")}}
	tests := []struct {
		name      string
		fault     tencentcloudtest.Fault
		n         int // FailNext count; 0 = SetDown
		wantErr   string
		wantWaits string
		requests  int // 0 = do not check
	}{
		{"throttled once", tencentcloudtest.Fault{Code: "RequestLimitExceeded"}, 1, "", "[1s]", 0},
		{"internal error twice", tencentcloudtest.Fault{Code: "InternalError"}, 2, "", "[1s 2s]", 0},
		{"down", tencentcloudtest.Fault{Code: "InternalError"}, 0, "having trouble", "[1s 2s 4s]", 4},
		{"throttled for long", tencentcloudtest.Fault{Code: "RequestLimitExceeded.UinLimitExceeded"}, 0, "rate-limiting this account", "[1s 2s 4s]", 4},
		{"proxy error page", tencentcloudtest.Fault{Status: 502, Body: "<html>502 Bad Gateway</html>"}, 0, "having trouble (HTTP 502", "[1s 2s 4s]", 4},
		{"garbage", tencentcloudtest.Fault{Status: 200, Body: "<html>portal</html>"}, 0, "not its API's JSON", "[]", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, k := setup(t, tencentcloudtest.Options{})
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
		fake, k := setup(t, tencentcloudtest.Options{})
		o, fs := options(fake)
		fake.Close()
		_, err := k.provider(o).SetRecords(ctx, "example.com.", rec)
		if err == nil || !strings.Contains(err.Error(), "calling DNSPod") {
			t.Errorf("got %v, want a connection error", err)
		}
		if len(fs.waits) != 3 {
			t.Errorf("waits: got %v, want 3 backoffs", fs.waits)
		}
	})
}

// TestRateLimit: past the fake's per-second limit DNSPod answers
// RequestLimitExceeded (HTTP 200), which the client treats as throttling.
func TestRateLimit(t *testing.T) {
	fake, k := setup(t, tencentcloudtest.Options{RateLimit: 2})
	o, fs := options(fake)
	o.MaxRetries = 1
	p := k.provider(o)
	var err error
	for range 4 {
		if err = p.Check(context.Background(), ""); err != nil {
			break
		}
	}
	var rl *apiclient.RateLimitError
	if err == nil || !strings.Contains(err.Error(), "RequestLimitExceeded") || !errors.As(err, &rl) {
		t.Errorf("got %v (waits %v), want a RateLimitError with DNSPod's RequestLimitExceeded", err, fs.waits)
	}
}
