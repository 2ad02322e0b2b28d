package portmap

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/routerbed"
	"github.com/homederp/homederp/internal/testwait"
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
		Timeout:   2 * time.Second, // the default: a loaded CI machine is slow to answer
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

// waitFor is testwait.Until.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return testwait.Until(t, limit, what, cond)
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
