package detect_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/detect"
)

// TestProbes: a STUN probe asks one server, the next in turn each time,
// and the router is asked only once a full detection found that it
// answers.
func TestProbes(t *testing.T) {
	b := newBed(t)
	var mu sync.Mutex
	wan := public
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ddnstest.StartNATPMP(t, pc, func() netip.Addr {
		mu.Lock()
		defer mu.Unlock()
		return wan
	})
	b.d.Gateway = func() (netip.Addr, bool) { return netip.MustParseAddr("127.0.0.1"), true }
	b.d.NATPMPPort = uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	ctx := context.Background()

	if o := b.d.ProbeSTUN(ctx); o.Addr != public {
		t.Errorf("STUN probe before a full detection: got %+v, want %v", o, public)
	}
	if o := b.d.ProbeRouter(ctx); o.Source != "" {
		t.Errorf("router probe before a full detection: got %+v, want nothing asked", o)
	}
	if res := b.d.Detect(ctx, true, false); res.IPv4.State != detect.Known || res.IPv4.RouterWAN != public {
		t.Fatalf("detection: got %+v, want known with router WAN %v", res.IPv4, public)
	}
	hits1, hits2 := b.stun1.Hits(), b.stun2.Hits()
	for range 4 {
		if o := b.d.ProbeSTUN(ctx); o.Addr != public {
			t.Errorf("STUN probe: got %+v, want %v", o, public)
		}
	}
	if d1, d2 := b.stun1.Hits()-hits1, b.stun2.Hits()-hits2; d1 != 2 || d2 != 2 {
		t.Errorf("STUN requests of four probes: %d and %d, want 2 each", d1, d2)
	}
	if o := b.d.ProbeRouter(ctx); o.Addr != public {
		t.Errorf("router probe: got %+v, want %v", o, public)
	}

	mu.Lock()
	wan = netip.MustParseAddr("198.51.100.7")
	mu.Unlock()
	b.stun1.SetDown(true)
	b.stun2.SetDown(true)
	if o := b.d.ProbeRouter(ctx); o.Addr != wan {
		t.Errorf("router probe after the WAN address changed: got %+v, want %v", o, wan)
	}
	if o := b.d.ProbeSTUN(ctx); o.Addr.IsValid() || o.Err == "" {
		t.Errorf("STUN probe with the servers down: got %+v, want an error", o)
	}
}
