package ddns_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/homederp/homederp/internal/netnstest"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/internal/testwait"
	"tailscale.com/net/stunserver"
)

// The NAT test bed, all in network namespaces created by the test:
//
//	home (the box)            router (NAT)                    internet
//	eth0 192.168.1.10/24 ──── lan0 192.168.1.1/24
//	     2001:db8:1::10/64         2001:db8:1::1/64
//	     + a temporary and         wan0 203.0.113.10/24 ───── eth0 203.0.113.1/24
//	       a deprecated address         2001:db8:ff::10/64          2001:db8:ff::1/64
//	                               nftables masquerade (IPv4)  lo: 198.51.100.1, .2  STUN (tailscale stunserver)
//	                               NAT-PMP on 192.168.1.1          2001:db8:f0::101, ::102 STUN over IPv6
//	                                                               198.51.100.53 whoami (UDP 53, DoT 853)
//	                                                               198.51.100.10, 2001:db8:f0::10 BIND 9 (ns1.example.com)
//	                                                               198.51.100.20 Cloudflare fake: API :80, DNS :53
//	                                                               198.51.100.21 DNSPod fake: API :80, DNS :53
//	                                                               198.51.100.22 AliDNS fake: API :80, DNS :53
//
// With cgnat, the router's WAN is 100.64.0.10 behind a "carrier" namespace
// that masquerades again to 203.0.113.50.
type natBed struct {
	home, router, carrier, inet *netnstest.NS

	mu  sync.Mutex
	wan netip.Addr // the router's current WAN address (NAT-PMP answer)

	who *ddnstest.Whoami
}

const (
	stun1v4 = "198.51.100.1:3478"
	stun2v4 = "198.51.100.2:3478"
	stun1v6 = "[2001:db8:f0::101]:3478"
	stun2v6 = "[2001:db8:f0::102]:3478"
	bindIP  = "198.51.100.10"
	bindIP6 = "2001:db8:f0::10"
	cfIP    = "198.51.100.20"
	tcIP    = "198.51.100.21"
	aliIP   = "198.51.100.22"
	whoIP   = "198.51.100.53"
)

var boxV6 = netip.MustParseAddr("2001:db8:1::10")

type bedOptions struct {
	cgnat   bool // a second NAT at the carrier
	hardNAT bool // masquerade with random ports: the mapping varies by destination
}

func newNATBed(t testing.TB, o bedOptions) *natBed {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "ip")
	testenv.NeedCommand(t, "nft")
	b := &natBed{
		home:   netnstest.New(t, "hd-ddns-home"),
		router: netnstest.New(t, "hd-ddns-rtr"),
		inet:   netnstest.New(t, "hd-ddns-inet"),
	}
	netnstest.Link(t, b.home, "eth0", b.router, "lan0")
	b.home.Sysctl("net.ipv6.conf.eth0.use_tempaddr", "2")
	b.home.AddAddr("eth0", "192.168.1.10/24")
	// The stable address, managing temporary (privacy) addresses as a
	// desktop would, plus an old deprecated one: only the stable one may
	// be published.
	b.home.AddAddr("eth0", boxV6.String()+"/64", "mngtmpaddr")
	b.home.AddAddr("eth0", "2001:db8:1::dead/64", "preferred_lft", "0")
	b.home.IP("route", "add", "default", "via", "192.168.1.1")
	b.home.IP("-6", "route", "add", "default", "via", "2001:db8:1::1")

	b.router.AddAddr("lan0", "192.168.1.1/24")
	b.router.AddAddr("lan0", "2001:db8:1::1/64")
	b.router.Sysctl("net.ipv4.ip_forward", "1")
	b.router.Sysctl("net.ipv6.conf.all.forwarding", "1")
	masq := "masquerade"
	if o.hardNAT {
		masq = "masquerade random"
	}
	nat := fmt.Sprintf(`table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat;
		oifname "wan0" %s
	}
}`, masq)
	b.router.Nft(nat)

	b.inet.IP("addr", "add", "198.51.100.1/32", "dev", "lo")
	b.inet.IP("addr", "add", "198.51.100.2/32", "dev", "lo")
	b.inet.IP("addr", "add", bindIP+"/32", "dev", "lo")
	for _, ip := range []string{cfIP, tcIP, aliIP} {
		b.inet.IP("addr", "add", ip+"/32", "dev", "lo")
	}
	b.inet.IP("addr", "add", whoIP+"/32", "dev", "lo")
	b.inet.AddAddr("lo", bindIP6+"/128")
	b.inet.AddAddr("lo", "2001:db8:f0::101/128")
	b.inet.AddAddr("lo", "2001:db8:f0::102/128")

	if o.cgnat {
		b.carrier = netnstest.New(t, "hd-ddns-cgn")
		netnstest.Link(t, b.router, "wan0", b.carrier, "in0")
		netnstest.Link(t, b.carrier, "out0", b.inet, "eth0")
		b.router.AddAddr("wan0", "100.64.0.10/24")
		b.router.AddAddr("wan0", "2001:db8:ff::10/64")
		b.router.IP("route", "add", "default", "via", "100.64.0.1")
		b.router.IP("-6", "route", "add", "default", "via", "2001:db8:ff::1")
		b.carrier.AddAddr("in0", "100.64.0.1/24")
		b.carrier.AddAddr("in0", "2001:db8:ff::1/64")
		b.carrier.AddAddr("out0", "203.0.113.50/24")
		b.carrier.AddAddr("out0", "2001:db8:fe::50/64")
		b.carrier.IP("route", "add", "default", "via", "203.0.113.1")
		b.carrier.IP("-6", "route", "add", "default", "via", "2001:db8:fe::1")
		b.carrier.IP("-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:ff::10")
		b.carrier.Sysctl("net.ipv4.ip_forward", "1")
		b.carrier.Sysctl("net.ipv6.conf.all.forwarding", "1")
		b.carrier.Nft(strings.Replace(nat, `"wan0"`, `"out0"`, 1))
		b.inet.AddAddr("eth0", "203.0.113.1/24")
		b.inet.AddAddr("eth0", "2001:db8:fe::1/64")
		b.inet.IP("-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:fe::50")
		b.wan = netip.MustParseAddr("100.64.0.10")
	} else {
		netnstest.Link(t, b.router, "wan0", b.inet, "eth0")
		b.router.AddAddr("wan0", "203.0.113.10/24")
		b.router.AddAddr("wan0", "2001:db8:ff::10/64")
		b.router.IP("route", "add", "default", "via", "203.0.113.1")
		b.router.IP("-6", "route", "add", "default", "via", "2001:db8:ff::1")
		b.inet.AddAddr("eth0", "203.0.113.1/24")
		b.inet.AddAddr("eth0", "2001:db8:ff::1/64")
		b.inet.IP("-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:ff::10")
		b.wan = netip.MustParseAddr("203.0.113.10")
	}

	// The router answers NAT-PMP with its WAN address.
	ddnstest.StartNATPMP(t, b.router.MustListenPacket("udp4", "192.168.1.1:5351"), func() netip.Addr {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.wan
	})

	// Two real STUN servers per family (tailscale.com/net/stunserver).
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, addr := range []string{stun1v4, stun2v4, stun1v6, stun2v6} {
		s := stunserver.New(ctx)
		if err := b.inet.Do(func() error { return s.Listen(addr) }); err != nil {
			t.Fatalf("STUN on %s: %v", addr, err)
		}
		go s.Serve()
	}
	b.who = ddnstest.StartWhoami(t, ddnstest.WhoamiOptions{
		UDP: b.inet.MustListenPacket("udp4", whoIP+":53"),
		TCP: b.inet.MustListen("tcp4", whoIP+":53"),
		TLS: b.inet.MustListen("tcp4", whoIP+":853"),
	})
	return b
}

// setWAN moves the router's public address, as a DHCP renewal with a new
// lease would.
func (b *natBed) setWAN(from, to string) {
	b.router.IP("addr", "del", from+"/24", "dev", "wan0")
	b.router.AddAddr("wan0", to+"/24")
	b.router.IP("route", "replace", "default", "via", "203.0.113.1")
	b.mu.Lock()
	b.wan = netip.MustParseAddr(to)
	b.mu.Unlock()
}

func (b *natBed) detector() *detect.Detector {
	return &detect.Detector{
		STUN:      []string{stun1v4, stun2v4, stun1v6, stun2v6},
		Whoami:    []detect.WhoamiServer{b.who.DoT()},
		TLSConfig: &tls.Config{RootCAs: b.who.Roots},
		Net:       b.home.Dialer(),
		Timeout:   time.Second,
		Addrs: func() ([]detect.IfAddr, error) {
			var out []detect.IfAddr
			err := b.home.Do(func() error {
				var err error
				out, err = detect.SystemAddrs()
				return err
			})
			return out, err
		},
		Gateway: func() (netip.Addr, bool) { return netip.MustParseAddr("192.168.1.1"), true },
		AddrEvents: func(ctx context.Context, changed func()) error {
			return b.home.Do(func() error { return detect.SystemAddrEvents(ctx, changed) })
		},
	}
}

func (b *natBed) config(t *testing.T, bp bedProvider) ddns.Config {
	return ddns.Config{
		Hostname:       "derp.example.com",
		ProviderName:   bp.name,
		IPv4:           true,
		IPv6:           true,
		Provider:       bp.p,
		Detector:       b.detector(),
		Verifier:       &authdns.Checker{Resolvers: []netip.AddrPort{bp.auth}, Net: b.home.Dialer(), Timeout: 2 * time.Second},
		Interval:       time.Second,
		RetryBase:      500 * time.Millisecond,
		RetryMax:       2 * time.Second,
		RedetectDelay:  200 * time.Millisecond,
		ConfirmStart:   100 * time.Millisecond,
		ConfirmTimeout: 20 * time.Second,
		StateDir:       t.TempDir(),
		Logf:           t.Logf,
	}
}

// waitFor is testwait.Until.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return testwait.Until(t, limit, what, cond)
}

func served(u *ddns.Updater, a4, a6 netip.Addr) bool {
	st := u.Status()
	return st.LastError == "" && len(st.ServedA) == 1 && st.ServedA[0] == a4 && len(st.ServedAAAA) == 1 && st.ServedAAAA[0] == a6
}

// checksAfter waits until n more checks have completed.
func checksAfter(t *testing.T, u *ddns.Updater, n int) {
	t.Helper()
	for range n {
		last := u.Status().LastCheck
		waitFor(t, 30*time.Second, "next check", func() bool { return u.Status().LastCheck.After(last) })
	}
}

// TestNATBed: the router's public address changes and the updater
// converges, with each provider; steady state costs no provider call.
func TestNATBed(t *testing.T) {
	testenv.NeedLong(t)
	for _, name := range bedProviders {
		t.Run(name, func(t *testing.T) {
			b := newNATBed(t, bedOptions{})
			bp := b.provider(t, name)
			u, err := ddns.New(b.config(t, bp))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { u.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })

			first := netip.MustParseAddr("203.0.113.10")
			second := netip.MustParseAddr("203.0.113.20")
			took := waitFor(t, 60*time.Second, "first publication", func() bool { return served(u, first, boxV6) })
			initialCalls := bp.calls()
			t.Logf("first publication: %v, %d provider calls", took.Round(time.Millisecond), initialCalls)

			checksAfter(t, u, 3)
			if got := bp.calls() - initialCalls; got != 0 {
				t.Errorf("steady state before the change: %d provider calls, want 0", got)
			}

			b.setWAN("203.0.113.10", "203.0.113.20")
			start := time.Now()
			before := bp.calls()
			conv := waitFor(t, 60*time.Second, "convergence on the new address", func() bool { return served(u, second, boxV6) })
			convCalls := bp.calls() - before

			checksAfter(t, u, 3)
			steady := bp.calls() - before - convCalls
			if steady != 0 {
				t.Errorf("steady state after the change: %d provider calls, want 0", steady)
			}
			st := u.Status()
			if st.PublicIPv4 != second || st.PublicIPv6 != boxV6 || st.NoIPv4 {
				t.Errorf("status: got v4 %v v6 %v noIPv4 %v", st.PublicIPv4, st.PublicIPv6, st.NoIPv4)
			}
			if !strings.Contains(st.History[0].Message, "203.0.113.10 → 203.0.113.20") {
				t.Errorf("newest history event: got %+v", st.History[0])
			}
			for _, s := range st.Sources {
				if strings.Contains(s, "2001:db8:1::dead") {
					t.Errorf("the deprecated address was used: %s", s)
				}
			}
			if bp.records != nil {
				if got, want := bp.records("derp", "A"), []string{fmt.Sprintf("203.0.113.20 ttl %d", bp.ttl)}; !slices.Equal(got, want) {
					t.Errorf("derp A at %s: got %q, want %q", name, got, want)
				}
				if got, want := bp.records("www", "A"), []string{"192.0.2.80 ttl 600"}; !slices.Equal(got, want) {
					t.Errorf("www A was touched: got %q, want %q", got, want)
				}
				t.Logf("%s requests by route: %v", name, bp.routes())
			}
			report(t, fmt.Sprintf("ddns %s: first publication %v (%d calls); router WAN 203.0.113.10 → 203.0.113.20: converged in %v with %d provider calls; steady state: %d calls in 3 checks (interval 1s)",
				name, took.Round(time.Millisecond), initialCalls, conv.Round(time.Millisecond), convCalls, steady))
			_ = start
		})
	}
}

// TestNATBedCGNAT: behind carrier-grade NAT the box reports no public
// IPv4 (the DERP map says "IPv4": "none"), writes no A record, and still
// publishes its IPv6 address.
func TestNATBedCGNAT(t *testing.T) {
	testenv.NeedLong(t)
	b := newNATBed(t, bedOptions{cgnat: true})
	bp := b.bind(t)
	u, err := ddns.New(b.config(t, bp))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := u.Check(ctx); err != nil {
		t.Fatal(err)
	}
	st := u.Status()
	if !st.NoIPv4 || !st.CGNAT || st.PublicIPv4.IsValid() {
		t.Errorf("status: NoIPv4 %v CGNAT %v PublicIPv4 %v; want true, true, none", st.NoIPv4, st.CGNAT, st.PublicIPv4)
	}
	if len(st.ServedA) != 0 || len(st.ServedAAAA) != 1 || st.ServedAAAA[0] != boxV6 {
		t.Errorf("served: A %v AAAA %v; want no A and AAAA %v", st.ServedA, st.ServedAAAA, boxV6)
	}
	if !strings.Contains(strings.Join(st.Warnings, " "), "CGNAT") {
		t.Errorf("warnings: got %q, want one explaining CGNAT", st.Warnings)
	}
	t.Logf("sources: %q", st.Sources)

	// Then the line loses IPv4 altogether (an IPv6-only line); BIND is
	// still reachable over IPv6.
	b.home.IP("route", "del", "default")
	if err := u.Check(ctx); err != nil {
		t.Fatal(err)
	}
	st = u.Status()
	if !st.NoIPv4 || !strings.Contains(strings.Join(st.Warnings, " "), "no IPv4 route") {
		t.Errorf("IPv6-only: NoIPv4 %v warnings %q", st.NoIPv4, st.Warnings)
	}
}

// TestNATBedHardNAT: a NAT that maps every destination to a new port is
// recognised (and still publishes the address, which port forwarding can
// reach).
func TestNATBedHardNAT(t *testing.T) {
	testenv.NeedLong(t)
	b := newNATBed(t, bedOptions{hardNAT: true})
	d := b.detector()
	res := d.Detect(context.Background(), true, false)
	if res.IPv4.State != detect.Known || !res.IPv4.MappingVaries {
		t.Errorf("hard NAT: got state %v MappingVaries %v (%v), want known and true", res.IPv4.State, res.IPv4.MappingVaries, res.IPv4.Observations)
	}
}

// report logs a measured number and appends it to the test output
// directory's ddns-numbers.txt, where the report picks it up.
func report(t *testing.T, line string) {
	t.Log(line)
	dir := os.Getenv("HOMEDERP_TEST_OUTPUT")
	if dir == "" {
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, "ddns-numbers.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0644)
	if err != nil {
		t.Logf("writing numbers: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
}
