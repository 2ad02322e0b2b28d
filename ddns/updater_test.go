package ddns_test

import (
	"context"
	"crypto/tls"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/cloudflare"
	"github.com/homederp/homederp/ddns/cloudflaretest"
	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/internal/bindtest"
	"tailscale.com/tstest"
)

var (
	oldIP = netip.MustParseAddr("203.0.113.9")
	newIP = netip.MustParseAddr("198.51.100.7")
)

// world is a loopback Internet: the Cloudflare fake (API and DNS), two
// STUN responders and a whoami server that report the "public" address
// the test chooses, as they would see the line behind its NAT.
type world struct {
	cf           *cloudflaretest.Server
	dnsAddr      netip.AddrPort
	stun1, stun2 *ddnstest.STUN
	who          *ddnstest.Whoami
	provider     *cloudflare.Provider
	cfg          ddns.Config
	changes      atomic.Int32 // OnChange calls
}

func newWorld(t *testing.T) *world {
	w := &world{
		cf:    cloudflaretest.New(t, cloudflaretest.Options{}),
		stun1: ddnstest.StartSTUN(t, nil),
		stun2: ddnstest.StartSTUN(t, nil),
		who:   ddnstest.StartWhoami(t, ddnstest.WhoamiOptions{}),
	}
	w.cf.AddZone("example.com")
	w.cf.AddRecord("example.com", "www", "A", "192.0.2.80", 300, false)
	w.dnsAddr = w.cf.StartDNS(t, cloudflaretest.DNSOptions{})
	// MaxWait below the first backoff: no waiting inside a check here
	// (the cloudflare package tests the retries themselves).
	w.provider = cloudflare.New(w.cf.AddToken(cloudflaretest.Token{}), apiclient.Options{HTTP: w.cf.Client(), MaxWait: 100 * time.Millisecond})
	w.setPublic(oldIP)
	w.cfg = ddns.Config{
		Hostname:     "derp.example.com",
		ProviderName: "cloudflare",
		IPv4:         true,
		Provider:     w.provider,
		Detector: &detect.Detector{
			STUN:      []string{w.stun1.Addr.String(), w.stun2.Addr.String()},
			Whoami:    []detect.WhoamiServer{w.who.DoT()},
			TLSConfig: &tls.Config{RootCAs: w.who.Roots},
			Timeout:   500 * time.Millisecond,
			Gateway:   func() (netip.Addr, bool) { return netip.Addr{}, false },
		},
		Verifier:       &authdns.Checker{Resolvers: []netip.AddrPort{w.dnsAddr}, Port: w.dnsAddr.Port(), Timeout: time.Second},
		RedetectDelay:  10 * time.Millisecond,
		ConfirmStart:   20 * time.Millisecond,
		ConfirmTimeout: 600 * time.Millisecond,
		StateDir:       t.TempDir(),
		Logf:           t.Logf,
		OnChange:       func(ddns.Status) { w.changes.Add(1) },
	}
	return w
}

func (w *world) setPublic(a netip.Addr) {
	w.stun1.Report(a)
	w.stun2.Report(a)
	w.who.Report(a)
}

func (w *world) updater(t *testing.T) *ddns.Updater {
	u, err := ddns.New(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// theA returns the content of derp's only A record at the fake, failing
// if there is not exactly one: the updater must never delete it or add a
// second.
func (w *world) theA(t *testing.T) string {
	t.Helper()
	recs := w.cf.Records("example.com", "derp", "A")
	if len(recs) != 1 {
		t.Fatalf("derp A records: got %+v, want exactly one", recs)
	}
	if recs[0].TTL != 60 || recs[0].Proxied {
		t.Errorf("derp A: got TTL %d proxied %v, want TTL 60 not proxied", recs[0].TTL, recs[0].Proxied)
	}
	return recs[0].Content
}

func TestCloudflareStory(t *testing.T) {
	w := newWorld(t)
	u := w.updater(t)
	ctx := context.Background()

	t.Run("first check creates the record", func(t *testing.T) {
		if err := u.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if got := w.theA(t); got != oldIP.String() {
			t.Errorf("A: got %s, want %v", got, oldIP)
		}
		st := u.Status()
		if st.PublicIPv4 != oldIP || len(st.ServedA) != 1 || st.ServedA[0] != oldIP || st.LastChange.IsZero() || st.LastError != "" || st.Zone != "example.com." {
			t.Errorf("status: got %+v", st)
		}
		if len(st.History) != 1 || st.History[0].Kind != "change" || st.History[0].Message != "A derp.example.com: none → 203.0.113.9" {
			t.Errorf("history: got %+v", st.History)
		}
	})

	t.Run("steady state costs no API call", func(t *testing.T) {
		before := w.cf.Requests()
		for range 3 {
			if err := u.Check(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := w.cf.Requests() - before; got != 0 {
			t.Errorf("API requests in steady state: got %d, want 0", got)
		}
	})

	t.Run("the line's address changes", func(t *testing.T) {
		w.setPublic(newIP)
		before := w.cf.RequestsByRoute()
		if err := u.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if got := w.theA(t); got != newIP.String() {
			t.Errorf("A: got %s, want %v", got, newIP)
		}
		after := w.cf.RequestsByRoute()
		// The zone is cached from the first write: one list + one PATCH.
		if got := after["PATCH /zones/:zone/dns_records/:id"] - before["PATCH /zones/:zone/dns_records/:id"]; got != 1 {
			t.Errorf("PATCH requests: got %d, want 1", got)
		}
		st := u.Status()
		if st.History[0].Message != "A derp.example.com: 203.0.113.9 → 198.51.100.7" {
			t.Errorf("newest event: got %+v", st.History[0])
		}
		if www := w.cf.Records("example.com", "www", "A"); len(www) != 1 || www[0].Content != "192.0.2.80" {
			t.Errorf("www A was touched: %+v", www)
		}
	})

	t.Run("history survives a restart", func(t *testing.T) {
		u2 := w.updater(t)
		st := u2.Status()
		if len(st.History) != 2 || st.LastChange.IsZero() {
			t.Errorf("reloaded history: got %+v", st.History)
		}
	})
}

// TestFailures: whatever breaks, the record is never deleted, never set to
// a wrong address, and the verified state is not advanced.
func TestFailures(t *testing.T) {
	tests := []struct {
		name    string
		break_  func(w *world)
		wantA   string // content of the A record afterwards
		wantErr string // substring of the check's error
	}{
		{"STUN servers disagree", func(w *world) {
			w.setPublic(newIP)
			w.stun2.Report(netip.MustParseAddr("192.0.2.66"))
		}, oldIP.String(), "disagree"},
		{"one STUN server down", func(w *world) {
			w.setPublic(newIP)
			w.stun1.SetDown(true)
		}, oldIP.String(), "Only 1 of 2"},
		{"DNS whoami down", func(w *world) {
			w.setPublic(newIP)
			w.who.SetDown(true)
		}, oldIP.String(), "whoami"},
		{"whoami answers garbage", func(w *world) {
			w.setPublic(newIP)
			w.who.SetGarbage([]string{"<html>error code: 1034</html>"})
		}, oldIP.String(), "whoami"},
		{"provider down", func(w *world) {
			w.setPublic(newIP)
			w.cf.SetDown(&cloudflaretest.Fault{Status: 503})
		}, oldIP.String(), "having trouble"},
		{"provider unreachable", func(w *world) {
			w.setPublic(newIP)
			w.cf.Close()
		}, oldIP.String(), "calling Cloudflare"},
		{"provider answers garbage", func(w *world) {
			w.setPublic(newIP)
			w.cf.SetDown(&cloudflaretest.Fault{Status: 200, Body: "<html>upstream error</html>", ContentType: "text/html"})
		}, oldIP.String(), "not its API's JSON"},
		{"authoritative server stale", func(w *world) {
			w.setPublic(newIP)
			w.cf.FreezeDNS()
		}, newIP.String(), "do not serve it yet"},
		{"token revoked", func(w *world) {
			w.setPublic(newIP)
			w.provider = cloudflare.New(strings.Repeat("x", 40), apiclient.Options{HTTP: w.cf.Client()})
			w.cfg.Provider = w.provider
		}, oldIP.String(), "does not accept this API token"},
		{"record switched to proxied", func(w *world) {
			w.setPublic(newIP)
			w.cf.SetProxied("example.com", "derp", "A", true)
		}, oldIP.String(), "proxied by Cloudflare"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.cf.AddRecord("example.com", "derp", "A", oldIP.String(), 60, false)
			u := w.updater(t)
			if err := u.Check(context.Background()); err != nil {
				t.Fatalf("first check: %v", err)
			}
			tt.break_(w)
			u = w.updater(t) // with the broken parts, same history
			err := u.Check(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("check: got %v, want an error containing %q", err, tt.wantErr)
			}
			recs := w.cf.Records("example.com", "derp", "A")
			if len(recs) != 1 || recs[0].Content != tt.wantA {
				t.Errorf("derp A afterwards: got %+v, want exactly one with %s", recs, tt.wantA)
			}
			st := u.Status()
			if st.LastError == "" {
				t.Errorf("status: LastError empty")
			}
			if st.History[0].Kind != "error" {
				t.Errorf("history: newest %+v, want an error", st.History[0])
			}
			for _, e := range st.History {
				if e.Kind == "change" && strings.Contains(e.Message, newIP.String()) {
					t.Errorf("history records an unverified change: %+v", e)
				}
			}
			// A repeated failure adds no second history entry.
			n := len(st.History)
			u.Check(context.Background())
			if got := len(u.Status().History); got != n {
				t.Errorf("history after a repeated failure: got %d entries, want %d", got, n)
			}
			w.cf.SetDown(nil)
		})
	}
}

func TestNoPublicIPv4(t *testing.T) {
	w := newWorld(t)
	w.cf.AddRecord("example.com", "derp", "A", oldIP.String(), 60, false)
	w.setPublic(netip.MustParseAddr("100.64.7.8"))
	u := w.updater(t)
	if err := u.Check(context.Background()); err != nil {
		t.Fatalf("check: %v (no public IPv4 is a warning, not a failure)", err)
	}
	st := u.Status()
	if !st.NoIPv4 || !st.CGNAT || st.PublicIPv4.IsValid() {
		t.Errorf("status: NoIPv4 %v CGNAT %v PublicIPv4 %v, want true true invalid", st.NoIPv4, st.CGNAT, st.PublicIPv4)
	}
	if got := w.theA(t); got != oldIP.String() {
		t.Errorf("A: got %s, want %v untouched", got, oldIP)
	}
	if !strings.Contains(strings.Join(st.Warnings, " "), "never deletes") {
		t.Errorf("warnings: got %q, want one about the leftover A record", st.Warnings)
	}
	if w.changes.Load() != 1 {
		t.Errorf("OnChange calls: got %d, want 1", w.changes.Load())
	}

	// A failed check is no verdict: the map keeps "IPv4": "none".
	w.who.SetDown(true)
	if err := u.Check(context.Background()); err == nil {
		t.Fatal("check with whoami down: got no error")
	}
	if st := u.Status(); !st.NoIPv4 || w.changes.Load() != 1 {
		t.Errorf("after an unknown check: NoIPv4 %v, OnChange calls %d; want true, 1", st.NoIPv4, w.changes.Load())
	}
	// ... and so does a restart, before its first check.
	if st := w.updater(t).Status(); !st.NoIPv4 {
		t.Errorf("after a restart: NoIPv4 false, want true from the history")
	}
}

func TestBrokenHistory(t *testing.T) {
	w := newWorld(t)
	path := filepath.Join(w.cfg.StateDir, ddns.HistoryFile)
	if err := os.WriteFile(path, []byte("{not json"), 0644); err != nil {
		t.Fatal(err)
	}
	u := w.updater(t)
	st := u.Status()
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "unreadable") {
		t.Errorf("warnings: got %q", st.Warnings)
	}
	matches, _ := filepath.Glob(path + ".broken-*")
	if len(matches) != 1 {
		t.Fatalf("broken history kept: got %v, want one file", matches)
	}
	if b, _ := os.ReadFile(matches[0]); string(b) != "{not json" {
		t.Errorf("kept file: got %q", b)
	}
}

func TestRun(t *testing.T) {
	w := newWorld(t)
	w.cfg.Interval = 200 * time.Millisecond
	u := w.updater(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for w.cf.DNSQueries() < 8 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st := u.Status()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if w.theA(t) != oldIP.String() {
		t.Errorf("A not created by Run")
	}
	if d := st.NextCheck.Sub(st.LastCheck); d < 170*time.Millisecond || d > 230*time.Millisecond {
		t.Errorf("next check %v after the last, want 200ms ±10%%", d)
	}
}

// TestRFC2136 runs the updater against a real BIND 9 on loopback.
func TestRFC2136(t *testing.T) {
	srv := bindtest.Start(t, bindtest.Options{Zone: "example.com.", Records: []string{"derp 60 IN A 192.0.2.1", "www 60 IN A 192.0.2.80"}})
	w := newWorld(t)
	p := &rfc2136.Provider{Server: srv.Addr.String(), Zone: srv.Zone, KeyName: srv.KeyName, KeyAlgorithm: srv.KeyAlgorithm, Secret: srv.Secret}
	w.cfg.Provider = p
	w.cfg.ProviderName = "rfc2136"
	w.cfg.Verifier = &authdns.Checker{Resolvers: []netip.AddrPort{srv.Addr}, Port: srv.Addr.Port(), Timeout: time.Second}
	u := w.updater(t)
	ctx := context.Background()
	check := func(want netip.Addr, updates int64) {
		t.Helper()
		if err := u.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if got := u.Status().ServedA; len(got) != 1 || got[0] != want {
			t.Errorf("served A: got %v, want %v", got, want)
		}
		if got := p.Updates(); got != updates {
			t.Errorf("updates sent: got %d, want %d", got, updates)
		}
	}
	check(oldIP, 1)
	check(oldIP, 1) // steady state: no update
	w.setPublic(newIP)
	check(newIP, 2)
	if st := u.Status(); !strings.Contains(st.History[0].Message, "203.0.113.9 → 198.51.100.7") {
		t.Errorf("history: got %+v", st.History)
	}

	// A wrong key: the record stays as it is.
	p.Secret = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw=="
	w.setPublic(oldIP)
	if err := u.Check(ctx); err == nil || !strings.Contains(err.Error(), "TSIG") {
		t.Errorf("check with a wrong key: got %v, want a TSIG error", err)
	}
	c := w.cfg.Verifier.(*authdns.Checker)
	s, err := c.Served(ctx, "derp.example.com", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if g := authdns.Compare(s.A, []netip.Addr{newIP}); !g.InSync() {
		t.Errorf("A after a refused update: got %+v, want %v", s.A, newIP)
	}
	if g := authdns.Compare(mustServed(t, c, "www.example.com").A, []netip.Addr{netip.MustParseAddr("192.0.2.80")}); !g.InSync() {
		t.Errorf("www was touched")
	}
}

func mustServed(t *testing.T, c *authdns.Checker, name string) *authdns.Served {
	t.Helper()
	s, err := c.Served(context.Background(), name, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRunSchedule drives Run with an injected fake clock: failures back
// off exponentially from RetryBase, a success returns to the interval.
func TestRunSchedule(t *testing.T) {
	w := newWorld(t)
	// The record is already right, so a successful check writes nothing
	// and never waits on the (fake) clock inside the check.
	w.cf.AddRecord("example.com", "derp", "A", oldIP.String(), 60, false)
	w.who.SetDown(true) // detection fails: Unknown
	clock := tstest.NewClock(tstest.ClockOpts{Start: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)})
	w.cfg.Clock = clock
	w.cfg.Rand = func() float64 { return 0.5 } // no jitter
	w.cfg.Interval = 2 * time.Minute
	w.cfg.RetryBase = 30 * time.Second
	w.cfg.RetryMax = 5 * time.Minute
	u := w.updater(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// waitNext waits (in real time, bounded) until the check that
	// follows lastNext has been scheduled, and returns its delay.
	lastNext := time.Time{}
	waitNext := func() time.Duration {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st := u.Status()
			if !st.NextCheck.IsZero() && st.NextCheck != lastNext {
				lastNext = st.NextCheck
				return st.NextCheck.Sub(st.LastCheck)
			}
			if time.Now().After(deadline) {
				t.Fatal("no check scheduled within 20s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i, want := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute} {
		if got := waitNext(); got != want {
			t.Errorf("after failure %d: next check in %v, want %v", i+1, got, want)
		}
		if i < 4 {
			clock.Advance(want)
		}
	}
	// Fixed while the 5m (capped) wait runs: the next check succeeds.
	w.who.SetDown(false)
	clock.Advance(5 * time.Minute)
	if got := waitNext(); got != 2*time.Minute {
		t.Errorf("after a success: next check in %v, want the 2m interval", got)
	}
	if st := u.Status(); st.LastError != "" || len(st.ServedA) != 1 {
		t.Errorf("status after recovery: %+v", st)
	}
}
