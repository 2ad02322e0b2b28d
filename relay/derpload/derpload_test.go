package derpload

import (
	"context"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/homederp/homederp/relay"
	"tailscale.com/tailcfg"
)

func TestProc(t *testing.T) {
	pid := os.Getpid()
	// Burn CPU until the kernel has counted a tick of it (10 ms; on a
	// busy machine that takes longer than 10 ms of wall time), for at
	// most 5 s, so the reading cannot be a stuck zero.
	var cpu time.Duration
	var err error
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		for x, stop := 0, time.Now().Add(20*time.Millisecond); time.Now().Before(stop); x++ {
		}
		if cpu, err = ProcCPU(pid); err != nil || cpu > 0 {
			break
		}
	}
	if err != nil || cpu <= 0 {
		t.Errorf("ProcCPU(self): got %v, %v; want > 0", cpu, err)
	}
	rss, err := ProcRSS(pid)
	if err != nil || rss < 1024 {
		t.Errorf("ProcRSS(self): got %d KiB, %v; want at least a MiB", rss, err)
	}
	if _, err := ProcCPU(-1); err == nil {
		t.Error("ProcCPU(-1): got nil error")
	}
}

// TestMeasureInProcess runs a small load against a relay in this very
// process (so the "server" CPU and memory are the test's own) and checks
// every number comes back sensible.
func TestMeasureInProcess(t *testing.T) {
	dir := t.TempDir()
	b, err := NewBench(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := relay.NewManualCerts(filepath.Join(dir, "certs"), "127.0.0.1", nil, t.Logf, nil)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	srv, err := relay.New(relay.Config{
		Hostname:  "127.0.0.1",
		DERPAddrs: []string{"127.0.0.1:0"},
		STUNAddrs: []string{"127.0.0.1:0"},
		KeyPath:   filepath.Join(dir, "derper.key"),
		Certs:     m,
	}, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	stun := srv.STUNAddrs()[0].(*net.UDPAddr)
	target := Target{
		Name: "in-process",
		PID:  os.Getpid(),
		STUN: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(stun.Port)),
		Region: &tailcfg.DERPRegion{RegionID: 900, Nodes: []*tailcfg.DERPNode{{
			Name: "900a", RegionID: 900, HostName: "127.0.0.1", DERPPort: srv.DERPAddr().(*net.TCPAddr).Port, CertName: b.Pin,
		}}},
	}
	r, err := Measure(context.Background(), target, Options{
		Pairs: 2, Window: 4, Size: 1200, Duration: 700 * time.Millisecond,
		IdleClients: 20,
		STUNWorkers: 2, STUNWindow: 4, STUNDuration: 300 * time.Millisecond,
		Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if tr := r.Max; tr.Received == 0 || tr.Loss > 0.05 || tr.Mbps <= 0 || tr.P50 <= 0 || tr.P99 < tr.P50 || tr.ServerCPU <= 0 {
		t.Errorf("traffic: %+v", tr)
	}
	if r.Memory.RSSKB <= 0 || r.Memory.ConnectFailed != 0 {
		t.Errorf("memory: %+v", r.Memory)
	}
	if r.STUNRate <= 0 {
		t.Errorf("STUN rate %v", r.STUNRate)
	}
}

func TestSpreadOf(t *testing.T) {
	seq := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(n - i) // unsorted on purpose
		}
		return v
	}
	for _, tt := range []struct {
		n              int
		median, lo, hi float64 // lo and hi NaN-free only when an interval exists
		interval       bool
	}{
		{5, 3, 0, 0, false}, // 2 × 1/32 > 5 %: no 95 % interval yet
		{6, 3.5, 1, 6, true},
		{9, 5, 2, 8, true},
		{20, 10.5, 6, 15, true},
	} {
		s := SpreadOf(seq(tt.n))
		if s.Median != tt.median || s.Min != 1 || s.Max != float64(tt.n) {
			t.Errorf("SpreadOf(1..%d): median %v, range %v–%v; want %v, 1–%d", tt.n, s.Median, s.Min, s.Max, tt.median, tt.n)
		}
		if got := !math.IsNaN(s.Lo); got != tt.interval || tt.interval && (s.Lo != tt.lo || s.Hi != tt.hi) {
			t.Errorf("SpreadOf(1..%d): interval %v–%v, want %v (%v–%v)", tt.n, s.Lo, s.Hi, tt.interval, tt.lo, tt.hi)
		}
	}
	if w := SpreadOf([]float64{0.98, 1, 1.01, 0.99, 1.02, 1}).Width(); math.Abs(w-0.04) > 1e-9 {
		t.Errorf("Width: got %v, want 0.04", w)
	}
	if w := SpreadOf([]float64{1, 2}).Width(); !math.IsInf(w, 1) {
		t.Errorf("Width without an interval: got %v, want +Inf", w)
	}
}
