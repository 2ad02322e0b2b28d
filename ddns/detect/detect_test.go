package detect_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/detect"
)

var public = netip.MustParseAddr("203.0.113.9")

// bed is a loopback world: two STUN responders and a whoami server that
// all report the same "public" address, as they would behind a NAT.
type bed struct {
	stun1, stun2 *ddnstest.STUN
	who          *ddnstest.Whoami
	d            *detect.Detector
}

func newBed(t *testing.T) *bed {
	b := &bed{stun1: ddnstest.StartSTUN(t, nil), stun2: ddnstest.StartSTUN(t, nil), who: ddnstest.StartWhoami(t, ddnstest.WhoamiOptions{})}
	for _, s := range []*ddnstest.STUN{b.stun1, b.stun2} {
		s.Report(public)
	}
	b.who.Report(public)
	b.d = &detect.Detector{
		STUN:      []string{b.stun1.Addr.String(), b.stun2.Addr.String()},
		Whoami:    []detect.WhoamiServer{b.who.DoT()},
		TLSConfig: &tls.Config{RootCAs: b.who.Roots},
		Timeout:   700 * time.Millisecond,
		Gateway:   func() (netip.Addr, bool) { return netip.Addr{}, false }, // never the host's real router
	}
	return b
}

func TestDetectIPv4(t *testing.T) {
	cgnat := netip.MustParseAddr("100.64.3.4")
	tests := []struct {
		name      string
		setup     func(t *testing.T, b *bed)
		state     detect.State
		problem   string // substring of Problem
		warning   string // substring of a warning
		cgnat     bool
		doubleNAT bool
	}{
		{name: "all agree", state: detect.Known},
		{name: "plain DNS whoami", state: detect.Known, setup: func(t *testing.T, b *bed) {
			b.d.Whoami = []detect.WhoamiServer{b.who.Plain()}
		}},
		{name: "whoami falls back to the second server", state: detect.Known, setup: func(t *testing.T, b *bed) {
			down := ddnstest.StartWhoami(t, ddnstest.WhoamiOptions{})
			down.SetDown(true)
			b.d.Whoami = []detect.WhoamiServer{down.DoT(), b.who.DoT()}
		}},
		{name: "STUN servers disagree", state: detect.Unknown, problem: "disagree", setup: func(t *testing.T, b *bed) {
			b.stun2.Report(netip.MustParseAddr("198.51.100.66"))
		}},
		{name: "whoami disagrees", state: detect.Unknown, problem: "disagree", setup: func(t *testing.T, b *bed) {
			b.who.Report(netip.MustParseAddr("198.51.100.66"))
		}},
		{name: "one STUN server down", state: detect.Unknown, problem: "Only 1 of 2 STUN servers", setup: func(t *testing.T, b *bed) {
			b.stun2.SetDown(true)
		}},
		{name: "wrong transaction ID is not an answer", state: detect.Unknown, problem: "Only 1 of 2", setup: func(t *testing.T, b *bed) {
			b.stun1.SetWrongTxID(true)
		}},
		{name: "whoami down", state: detect.Unknown, problem: "No DNS whoami server answered", setup: func(t *testing.T, b *bed) {
			b.who.SetDown(true)
		}},
		{name: "whoami answers garbage", state: detect.Unknown, problem: "No DNS whoami server answered", setup: func(t *testing.T, b *bed) {
			b.who.SetGarbage([]string{"<html>error code: 1034</html>"})
		}},
		{name: "whoami answers two addresses", state: detect.Unknown, problem: "No DNS whoami server answered", setup: func(t *testing.T, b *bed) {
			b.who.SetGarbage([]string{"203.0.113.9", "203.0.113.10"})
		}},
		{name: "whoami certificate untrusted", state: detect.Unknown, problem: "No DNS whoami server answered", setup: func(t *testing.T, b *bed) {
			b.d.TLSConfig = nil
		}},
		{name: "loopback is never published", state: detect.Unknown, problem: "loopback", setup: func(t *testing.T, b *bed) {
			b.stun1.Report(netip.Addr{})
			b.stun2.Report(netip.Addr{})
			b.who.Report(netip.Addr{})
		}},
		{name: "shared address seen from outside", state: detect.None, problem: "no public IPv4", cgnat: true, setup: func(t *testing.T, b *bed) {
			b.stun1.Report(cgnat)
			b.stun2.Report(cgnat)
			b.who.Report(cgnat)
		}},
		{name: "tailnet address", state: detect.None, problem: "100.64.0.0/10", cgnat: true, setup: func(t *testing.T, b *bed) {
			ts := netip.MustParseAddr("100.101.102.103")
			b.stun1.Report(ts)
			b.stun2.Report(ts)
			b.who.Report(ts)
		}},
		{name: "router WAN in CGNAT range", state: detect.None, problem: "CGNAT", cgnat: true, setup: func(t *testing.T, b *bed) {
			gateway(t, b, cgnat)
		}},
		{name: "router WAN private: double NAT", state: detect.Known, warning: "second router", doubleNAT: true, setup: func(t *testing.T, b *bed) {
			gateway(t, b, netip.MustParseAddr("192.168.178.20"))
		}},
		{name: "router WAN public but different", state: detect.Known, warning: "another NAT", setup: func(t *testing.T, b *bed) {
			gateway(t, b, netip.MustParseAddr("198.51.100.200"))
		}},
		{name: "router agrees", state: detect.Known, setup: func(t *testing.T, b *bed) {
			gateway(t, b, public)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t)
			if tt.setup != nil {
				tt.setup(t, b)
			}
			f := b.d.Detect(context.Background(), true, false).IPv4
			t.Logf("observations: %v", f.Observations)
			if f.State != tt.state {
				t.Fatalf("state: got %v (%s), want %v", f.State, f.Problem, tt.state)
			}
			if tt.state == detect.Known && f.Addr != public {
				t.Errorf("addr: got %v, want %v", f.Addr, public)
			}
			if tt.state != detect.Known && f.Addr.IsValid() {
				t.Errorf("addr: got %v, want none when %v", f.Addr, f.State)
			}
			if !strings.Contains(f.Problem, tt.problem) {
				t.Errorf("problem: got %q, want it to contain %q", f.Problem, tt.problem)
			}
			if tt.warning != "" && !strings.Contains(strings.Join(f.Warnings, " "), tt.warning) {
				t.Errorf("warnings: got %q, want one containing %q", f.Warnings, tt.warning)
			}
			if f.CGNAT != tt.cgnat || f.DoubleNAT != tt.doubleNAT {
				t.Errorf("CGNAT, DoubleNAT: got %v, %v, want %v, %v", f.CGNAT, f.DoubleNAT, tt.cgnat, tt.doubleNAT)
			}
		})
	}
}

// gateway starts a NAT-PMP router on loopback reporting wan.
func gateway(t *testing.T, b *bed, wan netip.Addr) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ddnstest.StartNATPMP(t, pc, func() netip.Addr { return wan })
	b.d.Gateway = func() (netip.Addr, bool) { return netip.MustParseAddr("127.0.0.1"), true }
	b.d.NATPMPPort = uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

func TestQuerySTUNMappingVaries(t *testing.T) {
	s1, s2 := ddnstest.StartSTUN(t, nil), ddnstest.StartSTUN(t, nil)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	answers := detect.QuerySTUN(context.Background(), pc, []netip.AddrPort{s1.Addr, s2.Addr}, 2*time.Second)
	local := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, a := range answers {
		if a.Err != nil || a.Mapped != local {
			t.Errorf("%v: got %v, %v; want %v", a.Server, a.Mapped, a.Err, local)
		}
	}
}

func TestStableIPv6(t *testing.T) {
	p := netip.MustParsePrefix
	addrs := []detect.IfAddr{
		{Interface: "eth0", Prefix: p("2001:db8:1::abcd:1234/64"), Temporary: true},
		{Interface: "eth0", Prefix: p("2001:db8:1::10/64")},
		{Interface: "eth0", Prefix: p("2001:db8:2::10/64"), Deprecated: true},
		{Interface: "eth0", Prefix: p("2001:db8:3::10/64"), Tentative: true},
		{Interface: "eth0", Prefix: p("fe80::1/64")},
		{Interface: "eth0", Prefix: p("fd00::10/64")},
		{Interface: "tailscale0", Prefix: p("fd7a:115c:a1e0::1/128")},
		{Interface: "tailscale0", Prefix: p("2001:db8:9::1/128")},
		{Interface: "eth1", Prefix: p("2001:db8:4::10/64")},
		{Interface: "lo", Prefix: p("::1/128")},
	}
	got, tempOnly := detect.StableIPv6(addrs)
	want := []netip.Addr{netip.MustParseAddr("2001:db8:1::10"), netip.MustParseAddr("2001:db8:4::10")}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || tempOnly {
		t.Errorf("StableIPv6: got %v, %v; want %v, false", got, tempOnly, want)
	}
	got, tempOnly = detect.StableIPv6(addrs[:1])
	if len(got) != 0 || !tempOnly {
		t.Errorf("StableIPv6(temporary only): got %v, %v; want none, true", got, tempOnly)
	}
}

func TestIPv6WithoutAddress(t *testing.T) {
	d := &detect.Detector{
		STUN:  []string{"[::1]:3478"},
		Addrs: func() ([]detect.IfAddr, error) { return nil, nil },
	}
	f := d.Detect(context.Background(), false, true).IPv6
	if f.State != detect.None || !strings.Contains(f.Problem, "no global IPv6") {
		t.Errorf("got %v %q, want none: no global IPv6", f.State, f.Problem)
	}
	d.Addrs = func() ([]detect.IfAddr, error) {
		return []detect.IfAddr{{Interface: "eth0", Prefix: netip.MustParsePrefix("2001:db8::99/64"), Temporary: true}}, nil
	}
	f = d.Detect(context.Background(), false, true).IPv6
	if f.State != detect.None || !strings.Contains(f.Problem, "temporary") {
		t.Errorf("got %v %q, want none: only temporary addresses", f.State, f.Problem)
	}
}
