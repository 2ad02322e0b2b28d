package portmap

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/routerbed"
	"github.com/homederp/homederp/internal/testenv"
)

// The tests here run the mapper against Debian's miniupnpd on the router
// of internal/routerbed, with short leases so that renewals and expiry
// happen within seconds.

const (
	// bedLease is short so that renewals and expiry happen within
	// seconds, but not shorter: miniupnpd keeps lease ends in whole
	// seconds, so a lease of 2 s renewed every second may end in the
	// same second as its renewal.
	bedLease = 3 * time.Second // renewed every 1.5 s
	derpPort = 12345
	stunPort = 3478
)

var bedPorts = []Port{{"tcp", derpPort, "DERP"}, {"udp", stunPort, "STUN"}}

// bedMapper is a running mapper on the bed's box.
type bedMapper struct {
	*Mapper
	stop func()
}

func newBedMapper(t *testing.T, b *routerbed.Bed, stateDir string, protocols []string) *bedMapper {
	t.Helper()
	m, err := New(Options{
		Net:       b.Home.Dialer(),
		Gateway:   func() (netip.Addr, bool) { return routerbed.Gateway, true },
		Gateway6:  func() (netip.Addr, bool) { return routerbed.Gateway6, true },
		Addr6:     func() (netip.Addr, bool) { return routerbed.Box6, true },
		StateDir:  stateDir,
		Lease:     bedLease,
		RetryMin:  300 * time.Millisecond,
		RetryMax:  2 * time.Second,
		Timeout:   time.Second,
		Protocols: protocols,
		Logf:      t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	bm := &bedMapper{Mapper: m}
	bm.stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(bm.stop)
	return bm
}

func (m *bedMapper) setPorts(ports ...Port) {
	m.Set(Config{Enabled: len(ports) > 0, Ports: ports, Hostname: "derp.example.com"})
}

// waitFor polls cond every 50 ms for at most limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// redirected reports whether the router forwards exactly these ports to
// the box.
func redirected(b *routerbed.Bed, ports ...Port) bool {
	var want, got []string
	for _, p := range ports {
		want = append(want, fmt.Sprintf("%s %d → %v:%d", p.Proto, p.Port, routerbed.BoxLAN, p.Port))
	}
	for _, r := range b.Redirects() {
		got = append(got, r.String())
	}
	slices.Sort(want)
	slices.Sort(got)
	return slices.Equal(got, want)
}

func pinholed(b *routerbed.Bed, ports ...Port) bool {
	var want, got []string
	for _, p := range ports {
		want = append(want, fmt.Sprintf("%s [%v]:%d", p.Proto, routerbed.Box6, p.Port))
	}
	for _, p := range b.Pinholes() {
		got = append(got, fmt.Sprintf("%s %v", p.Proto, p.To))
	}
	slices.Sort(want)
	slices.Sort(got)
	return slices.Equal(got, want)
}

// echoServers answer on the box: TCP on derpPort (both families) and UDP
// on stunPort, each echoing what it gets.
func echoServers(t *testing.T, b *routerbed.Bed) {
	ln := b.Home.MustListen("tcp", fmt.Sprintf(":%d", derpPort))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.CopyN(c, c, 64) }()
		}
	}()
	pc := b.Home.MustListenPacket("udp", fmt.Sprintf(":%d", stunPort))
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

// reachFromInternet dials the box's ports from the Internet namespace at
// addr (the router's WAN address, or the box's IPv6 address) and checks
// the echo, within timeout (a firewall that drops makes a dial wait).
func reachFromInternet(b *routerbed.Bed, addr netip.Addr, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := b.Inet.Dialer()
	for _, network := range []string{"tcp", "udp"} {
		port := derpPort
		if network == "udp" {
			port = stunPort
		}
		to := netip.AddrPortFrom(addr, uint16(port)).String()
		c, err := d.DialContext(ctx, network, to)
		if err != nil {
			return fmt.Errorf("%s %s: %w", network, to, err)
		}
		c.SetDeadline(time.Now().Add(time.Second))
		msg := []byte("hello " + network)
		c.Write(msg)
		got := make([]byte, len(msg))
		_, err = io.ReadFull(c, got)
		c.Close()
		if err != nil || string(got) != string(msg) {
			return fmt.Errorf("%s %s: no echo (%v)", network, to, err)
		}
	}
	return nil
}

func mappingFor(st Status, proto string, port uint16, ipv6 bool) Mapping {
	for _, m := range st.Mappings {
		if m.Proto == proto && m.Port.Port == port && m.IPv6 == ipv6 {
			return m
		}
	}
	return Mapping{}
}

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

// TestNoRouter: with miniupnpd stopped, the status names every protocol
// it tried and what each answered; once the router answers, the retry
// maps the ports.
func TestNoRouter(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	m := newBedMapper(t, b, t.TempDir(), nil)
	m.setPorts(bedPorts...)
	waitFor(t, 15*time.Second, "a round with every protocol", func() bool { return len(m.Status().Answers) >= 3 })
	st := m.Status()
	want := map[string]string{
		PCP:                          "no answer from 192.168.1.1:5351",
		NATPMP:                       "no answer from 192.168.1.1:5351",
		UPnP:                         "no Internet gateway device answered an SSDP search",
		"PCP over IPv6":              "no answer from [2001:db8:1::1]:5351",
		"UPnP IPv6 firewall control": "no Internet gateway device",
	}
	for _, a := range st.Answers {
		if a.OK || !strings.Contains(a.Result, want[a.Protocol]) {
			t.Errorf("answer: got %+v, want it to say %q", a, want[a.Protocol])
		}
	}
	if !strings.Contains(st.Problem, "does not forward tcp 12345, udp 3478") || st.AllMapped() {
		t.Errorf("problem: got %q", st.Problem)
	}
	t.Logf("status with no router: %+v", st)

	b.Start()
	took := waitFor(t, 15*time.Second, "mapped once the router answers", func() bool { return m.Status().AllMapped() })
	t.Logf("mapped %v after miniupnpd started", took.Round(time.Millisecond))
}

// TestRefused: a port the router's rules forbid (miniupnpd allows only
// 1024-65535) is refused by PCP and UPnP, and the status says so.
// (miniupnpd answers such a NAT-PMP request only after trying every
// other external port for many seconds, which a test cannot wait for.)
func TestRefused(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	b.Start()
	for _, tc := range []struct{ proto, want string }{
		{PCP, "refused: CANNOT_PROVIDE_EXTERNAL"},
		{UPnP, "refused: "},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			m := newBedMapper(t, b, t.TempDir(), []string{tc.proto})
			m.setPorts(Port{"tcp", 443, "DERP"})
			waitFor(t, 15*time.Second, "an answer", func() bool { return len(m.Status().Answers) > 0 })
			st := m.Status()
			if a := st.Answers[0]; a.OK || !strings.Contains(a.Result, tc.want) {
				t.Errorf("answer: got %+v, want %q", a, tc.want)
			}
			if !strings.Contains(st.Problem, "does not forward tcp 443") {
				t.Errorf("problem: got %q", st.Problem)
			}
			waitFor(t, 5*time.Second, "no forward left on the router", func() bool { return len(b.Redirects()) == 0 })
			t.Logf("%s: %s", tc.proto, st.Answers[0].Result)
			m.stop()
		})
	}
}

// TestCGNATRouter: a router whose own WAN address is the carrier's
// (100.64.0.0/10) cannot forward anything from the Internet; miniupnpd
// refuses every protocol, and the status says each refusal.
func TestCGNATRouter(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	b.SetWAN("100.64.0.10")
	b.Start()
	m := newBedMapper(t, b, t.TempDir(), nil)
	m.setPorts(bedPorts...)
	waitFor(t, 15*time.Second, "every protocol tried", func() bool { return len(m.Status().Answers) >= 3 })
	st := m.Status()
	for _, a := range st.Answers[:3] {
		if a.OK || !strings.Contains(a.Result, "refused") {
			t.Errorf("answer: got %+v, want a refusal", a)
		}
	}
	if st.AllMapped() || len(b.Redirects()) != 0 {
		t.Errorf("mapped behind CGNAT: %+v, %v", st.Mappings, b.Redirects())
	}
	t.Logf("behind CGNAT: %+v", st.Answers)
}

// TestForeignMappingsLeftAlone: a UPnP mapping of the DERP port that
// another program made for the box, and one of an unrelated port, are
// neither taken over nor removed.
func TestForeignMappingsLeftAlone(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	b.Start()
	ctx := context.Background()
	m0, err := New(Options{Net: b.Home.Dialer()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := discoverIGD(ctx, b.Home.Dialer(), m0.hc, routerbed.Gateway, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []uint16{derpPort, 5000} {
		if err := d.wan[0].AddPortMappingCtx(ctx, "", p, "TCP", p, routerbed.BoxLAN.String(), true, "a game console's forward", 0); err != nil {
			t.Fatal(err)
		}
	}
	foreign := []Port{{"tcp", derpPort, ""}, {"tcp", 5000, ""}}
	m := newBedMapper(t, b, t.TempDir(), nil)
	m.setPorts(bedPorts...)
	waitFor(t, 10*time.Second, "both ports forwarded", func() bool { return m.Status().AllMapped() })
	st := m.Status()
	if got := mappingFor(st, "tcp", derpPort, false); !got.Foreign || !strings.Contains(got.Error, "a game console's forward") {
		t.Errorf("tcp %d: got %+v, want it reported as someone else's forward", derpPort, got)
	}
	if got := mappingFor(st, "udp", stunPort, false); got.Foreign || got.Via != PCP {
		t.Errorf("udp %d: got %+v, want the box's own PCP mapping", stunPort, got)
	}
	m.setPorts()
	waitFor(t, 10*time.Second, "the box's own mapping removed", func() bool { return redirected(b, foreign...) })
	for _, p := range foreign {
		_, client, _, desc, _, err := d.wan[0].GetSpecificPortMappingEntryCtx(ctx, "", p.Port, "TCP")
		if err != nil || client != routerbed.BoxLAN.String() || desc != "a game console's forward" {
			t.Errorf("foreign mapping of tcp %d after switching off: %v %q %q", p.Port, err, client, desc)
		}
	}
}

// TestRestartedBoxRemovesItsMappings: the state file lets a box that
// restarted (a new Mapper) remove what the old one made, with PCP's
// nonce.
func TestRestartedBoxRemovesItsMappings(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	b.Start()
	dir := t.TempDir()
	m := newBedMapper(t, b, dir, nil)
	m.setPorts(bedPorts...)
	waitFor(t, 10*time.Second, "mapped", func() bool { return redirected(b, bedPorts...) && pinholed(b, bedPorts...) })
	m.stop()

	m2 := newBedMapper(t, b, dir, nil)
	m2.setPorts()
	waitFor(t, 10*time.Second, "removed by the restarted box", func() bool { return redirected(b) && pinholed(b) })
}

// TestCorruptState: a state file that does not parse is an error, not
// a silent reset that would forget mappings to remove.
func TestCorruptState(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte("{not json"), 0600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Net: nopNet{}, StateDir: dir}); err == nil || !strings.Contains(err.Error(), StateFile) {
		t.Errorf("New with a corrupt state: got %v, want an error naming %s", err, StateFile)
	}
}

type nopNet struct{}

func (nopNet) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, fmt.Errorf("no network")
}

func (nopNet) ListenPacket(context.Context, string, string) (net.PacketConn, error) {
	return nil, fmt.Errorf("no network")
}
