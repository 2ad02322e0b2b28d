package portmap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/routerbed"
	"github.com/homederp/homederp/internal/testenv"
)

// TestMiniupnpd is the mapper's life with each protocol against
// miniupnpd: the mappings are created and reach the box from the
// Internet, the IPv6 pinholes open where the protocol can open them, the
// leases are renewed (and do lapse without renewal), a router that
// restarts and forgets everything is healed within one renewal period,
// changed ports move the mappings, and switching off removes them.
func TestMiniupnpd(t *testing.T) {
	testenv.NeedLong(t)
	for _, tc := range []struct {
		proto string
		ipv6  bool // miniupnpd opens pinholes through this protocol
	}{
		{PCP, true},
		{NATPMP, false}, // NAT-PMP is IPv4 only
		{UPnP, true},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			b := routerbed.New(t, "hd-pm")
			b.Start()
			echoServers(t, b)
			if err := reachFromInternet(b, routerbed.WAN, 500*time.Millisecond); err == nil {
				t.Fatal("the box is reachable through the router before any mapping: the bed's firewall is open")
			}
			stateDir := t.TempDir()
			m := newBedMapper(t, b, stateDir, []string{tc.proto})
			m.setPorts(bedPorts...)

			took := waitFor(t, 10*time.Second, "the router forwards both ports", func() bool { return redirected(b, bedPorts...) })
			waitFor(t, 5*time.Second, "the status says both are mapped", func() bool { return m.Status().AllMapped() })
			st := m.Status()
			t.Logf("mapped in %v: %+v", took.Round(time.Millisecond), st.Mappings)
			if err := reachFromInternet(b, routerbed.WAN, 2*time.Second); err != nil {
				t.Errorf("from the Internet through %v: %v", routerbed.WAN, err)
			}
			if got := mappingFor(st, "tcp", derpPort, false); got.Via != tc.proto || got.External != fmt.Sprintf("%v:%d", routerbed.WAN, derpPort) || got.Lifetime != "3s" {
				t.Errorf("tcp mapping: got %+v, want via %s on %v:%d for %v", got, tc.proto, routerbed.WAN, derpPort, bedLease)
			}
			if st.External != routerbed.WAN || st.ExternalProblem != "" {
				t.Errorf("external: got %v (%q), want %v", st.External, st.ExternalProblem, routerbed.WAN)
			}
			if i := slices.IndexFunc(st.Answers, func(a Answer) bool { return a.Protocol == tc.proto }); i < 0 || !st.Answers[i].OK {
				t.Errorf("answers: got %+v, want %s to have mapped", st.Answers, tc.proto)
			}

			t.Run("IPv6", func(t *testing.T) {
				if !tc.ipv6 {
					if !strings.Contains(st.IPv6, "Allow tcp 12345 and udp 3478 in to 2001:db8:1::10") {
						t.Errorf("IPv6: got %q, want it to say what to allow in the router's firewall", st.IPv6)
					}
					if err := reachFromInternet(b, routerbed.Box6, 500*time.Millisecond); err == nil {
						t.Error("the box is reachable over IPv6 without a pinhole")
					}
					return
				}
				waitFor(t, 10*time.Second, "pinholes for both ports", func() bool { return pinholed(b, bedPorts...) })
				if err := reachFromInternet(b, routerbed.Box6, 2*time.Second); err != nil {
					t.Errorf("from the Internet over IPv6: %v", err)
				}
				if st := m.Status(); !strings.HasPrefix(st.IPv6, "Open to the Internet over IPv6") {
					t.Errorf("IPv6: got %q", st.IPv6)
				}
			})

			t.Run("renewed before the lease ends", func(t *testing.T) {
				// miniupnpd renews by deleting and re-adding the rule,
				// so a single look may fall in between; a lapse is a
				// mapping missing for several looks in a row.
				first := mappingFor(m.Status(), "udp", stunPort, false).Expires
				deadline := time.Now().Add(2 * bedLease)
				missing := 0
				for time.Now().Before(deadline) {
					if redirected(b, bedPorts...) {
						missing = 0
					} else if missing++; missing >= 3 {
						t.Fatalf("a mapping lapsed although the box renews it: %v", b.Redirects())
					}
					time.Sleep(100 * time.Millisecond)
				}
				if last := mappingFor(m.Status(), "udp", stunPort, false).Expires; !last.After(first.Add(bedLease)) {
					t.Errorf("expiry: first %v, after %v: %v; want it renewed at least twice", first, 2*bedLease, last)
				}
			})

			t.Run("router restart", func(t *testing.T) {
				b.Crash()
				if len(b.Redirects()) != 0 || len(b.Pinholes()) != 0 {
					t.Fatalf("the crashed router still has mappings:\n%s", b.Rules())
				}
				b.Start()
				healed := waitFor(t, 10*time.Second, "the mappings back", func() bool { return redirected(b, bedPorts...) })
				// A miniupnpd that has just started misses SSDP searches
				// for a second or so (UPnP then needs a round or two
				// more, RetryMin apart); PCP and NAT-PMP answer at once.
				if period := bedLease / 2; healed > period+3*time.Second {
					t.Errorf("healed after %v, want within one renewal period (%v) and 3 s", healed, period)
				}
				t.Logf("router restart healed in %v (renewal period %v)", healed.Round(time.Millisecond), bedLease/2)
				if tc.ipv6 {
					waitFor(t, 10*time.Second, "the pinholes back", func() bool { return pinholed(b, bedPorts...) })
				}
			})

			if tc.proto == UPnP {
				parent := t
				t.Run("power cut, pinhole IDs renumbered", func(t *testing.T) {
					m = powerCutRenumbered(t, parent, b, m, stateDir)
				})
			}

			moved := []Port{{"tcp", 23456, "DERP"}, {"udp", 3479, "STUN"}}
			t.Run("ports change", func(t *testing.T) {
				m.setPorts(moved...)
				waitFor(t, 10*time.Second, "the mappings moved", func() bool { return redirected(b, moved...) })
				if tc.ipv6 {
					waitFor(t, 10*time.Second, "the pinholes moved", func() bool { return pinholed(b, moved...) })
				}
			})

			t.Run("switched off", func(t *testing.T) {
				m.setPorts()
				waitFor(t, 10*time.Second, "no mappings", func() bool { return redirected(b) && pinholed(b) })
				waitFor(t, 5*time.Second, "the status", func() bool { return !m.Status().Enabled })
				waitFor(t, 5*time.Second, "nothing held in the state file", func() bool {
					b, err := os.ReadFile(filepath.Join(stateDir, StateFile))
					return err == nil && !strings.Contains(string(b), `"via"`)
				})
			})

			t.Run("lapse without renewal", func(t *testing.T) {
				m.setPorts(bedPorts...)
				waitFor(t, 10*time.Second, "mapped again", func() bool { return redirected(b, bedPorts...) })
				m.stop() // the box is gone: nobody renews
				lapsed := waitFor(t, 4*bedLease, "the router drops them", func() bool { return redirected(b) })
				t.Logf("the router dropped the mappings %v after the box stopped renewing (lease %v)", lapsed.Round(time.Millisecond), bedLease)
			})
		})
	}
}

// powerCutRenumbered is the box and the router losing power together:
// miniupnpd comes back numbering pinholes from 1, and before the box is
// up again another program on the box opens a pinhole of its own, which
// gets ID 1, the ID the box's state file holds for its tcp pinhole. The
// box must open its own pinholes again (not take that one's renewal for
// its own) and must not touch the other program's pinhole, when it renews
// or when it is switched off. It returns the new box's mapper, which
// runs until parent ends.
func powerCutRenumbered(t, parent *testing.T, b *routerbed.Bed, m *bedMapper, stateDir string) *bedMapper {
	hc := m.hc
	m.stop()
	b.Crash()
	b.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := discoverIGD(ctx, b.Home.Dialer(), hc, routerbed.Gateway6, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	other := Port{"tcp", 4000, "another program"}
	id, err := d.fw[0].AddPinholeCtx(ctx, "", 0, routerbed.Box6.String(), other.Port, uint16(pcpProto(other.Proto)), 120)
	if err != nil {
		t.Fatal(err)
	}
	if id != 1 {
		t.Fatalf("the other program's pinhole got ID %d; want 1, the ID the box held before the power cut", id)
	}
	t.Cleanup(func() { d.fw[0].DeletePinholeCtx(context.Background(), id) })

	m = newBedMapper(parent, b, stateDir, []string{UPnP})
	m.setPorts(bedPorts...)
	all := append(slices.Clone(bedPorts), other)
	waitFor(t, 10*time.Second, "the box's pinholes back beside the other one", func() bool { return pinholed(b, all...) })
	// Two more renewals: each must renew the box's own pinholes.
	deadline := time.Now().Add(2 * bedLease)
	missing := 0
	for time.Now().Before(deadline) {
		if pinholed(b, all...) {
			missing = 0
		} else if missing++; missing >= 3 {
			t.Fatalf("a pinhole lapsed although the box renews it: %v", b.Pinholes())
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.setPorts()
	waitFor(t, 10*time.Second, "only the other program's pinhole left", func() bool { return pinholed(b, other) })
	m.setPorts(bedPorts...)
	waitFor(t, 10*time.Second, "the box's pinholes again", func() bool { return pinholed(b, all...) })
	if err := d.fw[0].DeletePinholeCtx(ctx, id); err != nil {
		t.Fatalf("closing the other program's pinhole: %v", err)
	}
	return m
}
