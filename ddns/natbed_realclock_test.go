package ddns_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/authdns"
)

// realReaction is one IPv4 change timed on the real clock.
type realReaction struct {
	Provider    string  `json:"provider"`
	ChangeAfter float64 `json:"change_after_s"` // how long after the first publication the WAN address changed (random)
	IPv4Seconds float64 `json:"ipv4_change_to_served_s"`
	IPv4Calls   int64   `json:"ipv4_change_provider_calls"`
}

func (r realReaction) String() string {
	return fmt.Sprintf("ddns %s, probes, router without NAT-PMP, real clock: WAN address changed %.1fs after the first publication, served by the authoritative server %.1fs later, %d provider calls", r.Provider, r.ChangeAfter, r.IPv4Seconds, r.IPv4Calls)
}

// measureRealClock runs the updater with its production configuration on
// the real clock, with probes and a router that does not speak NAT-PMP
// (so STUN alone notices), changes the router's WAN address at a random
// moment of the probe schedule and polls the zone's authoritative server, from the
// bed's Internet, every 100 ms until it answers the new address. It takes
// up to about 70 s.
func measureRealClock(t testing.TB, b *natBed, bp bedProvider) realReaction {
	r := realReaction{Provider: bp.name}
	u, err := ddns.New(b.productionConfig(t, bp, mode{probes: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer run(t, u)()
	from, to := netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("203.0.113.20")
	poll(t, 60*time.Second, "first publication", func() bool { return served(u, from, boxV6) })

	wait := rand.N(33 * time.Second)
	time.Sleep(wait)
	r.ChangeAfter = wait.Seconds()
	calls := bp.calls()
	start := time.Now()
	b.setWAN(from.String(), to.String())
	auth := &authdns.Checker{Resolvers: []netip.AddrPort{bp.auth}, Net: b.inet.Dialer(), Timeout: time.Second}
	poll(t, 150*time.Second, "the authoritative server answering the new address", func() bool {
		s, err := auth.Served(context.Background(), "derp.example.com", true, false)
		return err == nil && authdns.Compare(s.A, []netip.Addr{to}).InSync()
	})
	r.IPv4Seconds = time.Since(start).Seconds()
	r.IPv4Calls = bp.calls() - calls
	return r
}

// poll checks cond every 100 ms for at most limit.
func poll(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
	}
}
