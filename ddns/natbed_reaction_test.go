package ddns_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/internal/testenv"
)

// The reaction measurement of issue 12, in the NAT test bed: how long
// after the line's public address changes the zone's authoritative server
// serves the new one, with the production schedule and timeouts (a full
// check every 2 min, a probe every 30 s, 2 s between the two detections,
// every jitter at its +10 % worst), how many provider calls that takes,
// and what steady state costs toward each outside service.
//
// The updater runs on a stepped clock (ddnstest.Clock): its waits are
// skipped, not shortened, and everything it does in between takes real
// time on that clock, so a day of its schedule takes seconds and the
// measured reaction is what the real clock would show. The change is made
// right after a probe (or, without probes, a check), the worst moment.
//
// TestNATBedReaction is the short form CI runs (one hour of steady state);
// BenchmarkNATBedReaction (scripts/bench-ddns.sh) measures a whole day and
// adds a round on the real clock.

// worstJitter makes every interval 10 % longer (see nextDelay).
func worstJitter() float64 { return 0.99999 }

// traffic counts what reached the bed's Internet, from nftables counters
// in its namespace, and the provider's own count of calls.
type traffic struct {
	STUN     int64 `json:"stun_requests"`          // UDP packets to port 3478
	DoT      int64 `json:"whoami_dot_connections"` // TCP connections to port 853
	DNS      int64 `json:"dns_queries"`            // UDP packets to port 53: the zone's servers, zone discovery
	Provider int64 `json:"provider_calls"`         // Cloudflare API requests, or messages to the RFC 2136 primary
}

func (a traffic) sub(b traffic) traffic {
	return traffic{a.STUN - b.STUN, a.DoT - b.DoT, a.DNS - b.DNS, a.Provider - b.Provider}
}

func (a traffic) per(window, unit time.Duration) map[string]float64 {
	f := float64(unit) / float64(window)
	return map[string]float64{"stun_requests": float64(a.STUN) * f, "whoami_dot_connections": float64(a.DoT) * f, "dns_queries": float64(a.DNS) * f, "provider_calls": float64(a.Provider) * f}
}

// countTraffic installs the counters in the bed's Internet.
func (b *natBed) countTraffic() {
	b.inet.Nft(`table inet hdacct {
	counter stun { }
	counter dot { }
	counter dns { }
	chain input {
		type filter hook input priority filter; policy accept;
		udp dport 3478 counter name "stun"
		tcp dport 853 tcp flags & (syn | ack) == syn counter name "dot"
		udp dport 53 counter name "dns"
	}
}`)
}

func (b *natBed) traffic(t testing.TB, bp bedProvider) traffic {
	t.Helper()
	var out struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets int64  `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(b.inet.Run("nft", "-j", "list", "counters", "table", "inet", "hdacct")), &out); err != nil {
		t.Fatalf("reading the traffic counters: %v", err)
	}
	tr := traffic{Provider: bp.calls()}
	for _, o := range out.Nftables {
		if o.Counter == nil {
			continue
		}
		switch o.Counter.Name {
		case "stun":
			tr.STUN = o.Counter.Packets
		case "dot":
			tr.DoT = o.Counter.Packets
		case "dns":
			tr.DNS = o.Counter.Packets
		}
	}
	return tr
}

// productionConfig is the appliance's configuration of the updater: every
// interval and timeout at its default, only the endpoints in the bed.
func (b *natBed) productionConfig(t testing.TB, bp bedProvider, m mode) ddns.Config {
	det := b.detector()
	det.Timeout = 0
	if !m.natpmp {
		det.Gateway = func() (netip.Addr, bool) { return netip.Addr{}, false }
	}
	c := ddns.Config{
		Hostname:     "derp.example.com",
		ProviderName: bp.name,
		IPv4:         true,
		IPv6:         true,
		Provider:     bp.p,
		Detector:     det,
		Verifier:     &authdns.Checker{Resolvers: []netip.AddrPort{bp.auth}, Net: b.home.Dialer()},
		StateDir:     t.TempDir(),
	}
	if _, bench := t.(*testing.B); !bench {
		// A benchmark's log is cut to its first lines, which the
		// updater's would fill before the results.
		c.Logf = t.Logf
	}
	if m.probes {
		c.Prober = det
	}
	return c
}

// mode is how the updater runs in one measurement.
type mode struct {
	name   string
	probes bool // a Prober between full checks
	natpmp bool // the updater may ask the router over NAT-PMP
}

var modes = []mode{
	{name: "full checks only", natpmp: true}, // as before probes
	{name: "probes, router without NAT-PMP", probes: true},
	{name: "probes, router with NAT-PMP", probes: true, natpmp: true},
}

// measureModes measures every mode in turn in one bed, each with its own
// updater and state, moving the router's WAN address 203.0.113.10 → .20
// → .30 → .40 and, with probes, the box's IPv6 address 2001:db8:1::10 →
// ::20 → ::30 (new addresses each time, as a renumbered prefix has).
func measureModes(t testing.TB, b *natBed, bp bedProvider, window time.Duration) []reaction {
	var out []reaction
	v4 := func(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("203.0.113.%d0", i+1)) }
	v6 := func(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%d0", i+1)) }
	j := 0 // index of the box's current IPv6 address; v6(0) is boxV6
	for i, m := range modes {
		r := measureReaction(t, b, bp, m, window, v4(i), v4(i+1), v6(j), v6(j+1))
		if m.probes {
			j++
		}
		checkReaction(t, r)
		out = append(out, r)
	}
	return out
}

// reaction is one measurement.
type reaction struct {
	Provider string `json:"provider"`
	Mode     string `json:"mode"` // "full checks only" (before) or with probes (now)
	probes   bool

	// IPv4: the router's WAN address changes right after a probe.
	IPv4Seconds float64 `json:"ipv4_change_to_served_s"`
	IPv4Calls   int64   `json:"ipv4_change_provider_calls"`
	// IPv6: the box's own address changes, with probes only (the
	// kernel's address event starts the check).
	IPv6Seconds float64 `json:"ipv6_change_to_served_s,omitempty"`
	IPv6Calls   int64   `json:"ipv6_change_provider_calls,omitempty"`

	SteadyHours   float64            `json:"steady_window_h"`
	Steady        traffic            `json:"steady_window"` // counted over the window
	SteadyPerHour map[string]float64 `json:"steady_per_hour"`
	CallsPerDay   float64            `json:"steady_provider_calls_per_day"` // the window's calls × 24 h / window
}

// measureReaction runs one updater in the bed on a stepped clock: first
// publication, a steady window, then the router's WAN address from4 → to4
// and, with probes, the box's IPv6 address from6 → to6.
func measureReaction(t testing.TB, b *natBed, bp bedProvider, m mode, window time.Duration, from4, to4, from6, to6 netip.Addr) reaction {
	r := reaction{Provider: bp.name, Mode: m.name, probes: m.probes, SteadyHours: window.Hours()}
	clock := ddnstest.NewClock()
	c := b.productionConfig(t, bp, m)
	c.Clock, c.Rand = clock, worstJitter
	u, err := ddns.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer run(t, u)()
	stepUntil(t, clock, 50, "first publication", func() bool { return served(u, from4, from6) })

	before := b.traffic(t, bp)
	start := clock.Now()
	steps := int(window/(27*time.Second)) + 100 // at most one probe per 30 s −10 %
	stepUntil(t, clock, steps, "the steady window", func() bool { return clock.Since(start) >= window })
	r.Steady = b.traffic(t, bp).sub(before)
	r.SteadyPerHour = r.Steady.per(clock.Since(start), time.Hour)
	r.CallsPerDay = r.SteadyPerHour["provider_calls"] * 24

	idle(t, clock)
	calls := bp.calls()
	changed := clock.Now()
	b.setWAN(from4.String(), to4.String())
	stepUntil(t, clock, 50, "the new IPv4 address", func() bool { return served(u, to4, from6) })
	r.IPv4Seconds = u.Status().LastChange.Sub(changed).Seconds()
	r.IPv4Calls = bp.calls() - calls
	if !m.probes {
		return r
	}

	idle(t, clock)
	calls, timers := bp.calls(), clock.Timers()
	changed = clock.Now()
	b.home.IP("addr", "del", from6.String()+"/64", "dev", "eth0")
	b.home.AddAddr("eth0", to6.String()+"/64")
	// The kernel's address event wakes the updater: it makes a new
	// timer without a step.
	for deadline := time.Now().Add(5 * time.Second); clock.Timers() == timers && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if clock.Timers() == timers {
		t.Errorf("the updater did not react to the IPv6 address event within 5s")
	}
	stepUntil(t, clock, 50, "the new IPv6 address", func() bool { return served(u, to4, to6) })
	r.IPv6Seconds = u.Status().LastChange.Sub(changed).Seconds()
	r.IPv6Calls = bp.calls() - calls
	return r
}

// idle waits until the updater waits on its clock.
func idle(t testing.TB, clock *ddnstest.Clock) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := clock.Idle(ctx); err != nil {
		t.Fatalf("the updater does not wait on its clock: %v", err)
	}
}

// checkReaction fails t on a broken measurement or a wrong call count,
// never on a slow machine: the reaction's time is the schedule plus real
// work, and only its order of magnitude (a probe's 30 s, not a check's
// 2 min) is asserted.
func checkReaction(t testing.TB, r reaction) {
	t.Helper()
	if r.Steady.Provider != 0 {
		t.Errorf("%s, %s: %d provider calls in %v h of steady state, want 0", r.Provider, r.Mode, r.Steady.Provider, r.SteadyHours)
	}
	if r.Steady.STUN == 0 || r.Steady.DNS == 0 {
		t.Errorf("%s, %s: the traffic counters saw nothing in the steady window (%+v): broken measurement", r.Provider, r.Mode, r.Steady)
	}
	if r.IPv4Calls < 1 || r.IPv4Calls > 2 {
		t.Errorf("%s, %s: %d provider calls for the IPv4 change, want 1 or 2", r.Provider, r.Mode, r.IPv4Calls)
	}
	if r.IPv4Seconds <= 0 {
		t.Errorf("%s, %s: IPv4 change served after %vs: broken measurement", r.Provider, r.Mode, r.IPv4Seconds)
	}
	if r.probes {
		if r.IPv4Seconds >= 120 || r.IPv6Seconds <= 0 || r.IPv6Seconds >= 120 {
			t.Errorf("%s: with probes the changes were served after %vs (IPv4) and %vs (IPv6), want less than a full check's 2 min", r.Provider, r.IPv4Seconds, r.IPv6Seconds)
		}
		if r.IPv6Calls < 1 || r.IPv6Calls > 2 {
			t.Errorf("%s: %d provider calls for the IPv6 change, want 1 or 2", r.Provider, r.IPv6Calls)
		}
	}
}

func (r reaction) String() string {
	s := fmt.Sprintf("ddns %s, %s: IPv4 change served after %.1fs with %d provider calls", r.Provider, r.Mode, r.IPv4Seconds, r.IPv4Calls)
	if r.IPv6Seconds > 0 {
		s += fmt.Sprintf("; IPv6 change after %.1fs with %d calls", r.IPv6Seconds, r.IPv6Calls)
	}
	h := r.SteadyPerHour
	return s + fmt.Sprintf("; steady state (%.0f h on the stepped clock): %.0f provider calls/day, per hour %.0f STUN requests, %.0f DoT connections, %.0f DNS queries",
		r.SteadyHours, r.CallsPerDay, h["stun_requests"], h["whoami_dot_connections"], h["dns_queries"])
}

// reactionBed is a NAT bed with traffic counters and the named provider.
func reactionBed(t testing.TB, name string) (*natBed, bedProvider) {
	b := newNATBed(t, bedOptions{})
	b.countTraffic()
	if name == "rfc2136" {
		return b, b.bind(t)
	}
	bp := b.cloudflare(t)
	return b, bp
}

// TestNATBedReaction is the CI form of the measurement: per provider and
// mode, an hour of steady state and the changes.
func TestNATBedReaction(t *testing.T) {
	testenv.NeedLong(t)
	for _, name := range []string{"rfc2136", "cloudflare"} {
		t.Run(name, func(t *testing.T) {
			b, bp := reactionBed(t, name)
			for _, r := range measureModes(t, b, bp, time.Hour) {
				report(t, r.String())
			}
		})
	}
}

// BenchmarkNATBedReaction is the full measurement (scripts/bench-ddns.sh):
// a day of steady state per provider and mode on the stepped clock, and a
// round on the real clock with probes, the WAN change at a random moment
// and the authoritative server itself polled for the answer. With
// HOMEDERP_DDNS_BENCH_OUT set it writes the results there as JSON.
func BenchmarkNATBedReaction(b *testing.B) {
	out := struct {
		Date      string         `json:"date"`
		Go        string         `json:"go"`
		Schedule  string         `json:"schedule"`
		Summary   summary        `json:"summary"`
		Stepped   []reaction     `json:"stepped_clock"`
		RealClock []realReaction `json:"real_clock"`
		Method    string         `json:"method"`
	}{
		Date:     time.Now().UTC().Format(time.RFC3339),
		Go:       runtime.Version(),
		Schedule: "production defaults: full check every 2m, probe every 30s, second detection after 2s, confirm polls from 1s; jitter +10% (stepped clock) or random ±10% (real clock)",
		Method:   "stepped clock: the updater's waits are skipped and its real work counted (ddnstest.Clock); the change is made right after a probe or check (worst phase) and timed to the updater's verified LastChange; calls per day = calls in the 24 h window. Real clock: the change at a random moment, timed until the zone's authoritative server answers the new address.",
	}
	for range b.N {
		for _, name := range []string{"rfc2136", "cloudflare"} {
			bed, bp := reactionBed(b, name)
			for _, r := range measureModes(b, bed, bp, 24*time.Hour) {
				b.Log(r.String())
				out.Stepped = append(out.Stepped, r)
			}
			bed, bp = reactionBed(b, name)
			rr := measureRealClock(b, bed, bp)
			b.Log(rr.String())
			out.RealClock = append(out.RealClock, rr)
		}
	}
	out.Summary = summarize(out.Stepped, out.RealClock)
	b.ReportMetric(out.Summary.Seconds, "s/ipv4-change")
	b.ReportMetric(float64(out.Summary.Calls), "calls/ipv4-change")
	if path := os.Getenv("HOMEDERP_DDNS_BENCH_OUT"); path != "" {
		j, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, append(j, '\n'), 0644); err != nil {
			b.Fatal(err)
		}
	}
}

// summary holds the figures of issue 12's table: the worst of every
// measurement with probes, and the worst without them (before).
type summary struct {
	Seconds       float64 `json:"ipv4_change_to_served_s"`        // worst, with probes
	Calls         int64   `json:"ipv4_change_provider_calls"`     // most, with probes
	CallsPerDay   float64 `json:"steady_provider_calls_per_day"`  // most, with probes
	BeforeSeconds float64 `json:"before_ipv4_change_to_served_s"` // worst, full checks only
	IPv6Seconds   float64 `json:"ipv6_change_to_served_s"`        // worst, with probes
	MeetsTarget   bool    `json:"meets_target"`                   // ≤ 70 s, ≤ 2 calls, 0 calls/day
}

func summarize(stepped []reaction, real []realReaction) summary {
	var s summary
	for _, r := range stepped {
		if !r.probes {
			s.BeforeSeconds = max(s.BeforeSeconds, r.IPv4Seconds)
			continue
		}
		s.Seconds, s.Calls = max(s.Seconds, r.IPv4Seconds), max(s.Calls, r.IPv4Calls)
		s.CallsPerDay, s.IPv6Seconds = max(s.CallsPerDay, r.CallsPerDay), max(s.IPv6Seconds, r.IPv6Seconds)
	}
	for _, r := range real {
		s.Seconds, s.Calls = max(s.Seconds, r.IPv4Seconds), max(s.Calls, r.IPv4Calls)
	}
	s.MeetsTarget = s.Seconds > 0 && s.Seconds <= 70 && s.Calls <= 2 && s.CallsPerDay == 0
	return s
}
