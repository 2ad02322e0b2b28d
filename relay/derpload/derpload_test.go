package derpload

import (
	"context"
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
	// Burn a little CPU so the reading cannot be a stuck zero.
	end := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
	}
	cpu, err := ProcCPU(pid)
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
		Pairs: 2, Rate: 200, Window: 4, Size: 1200, Duration: 700 * time.Millisecond,
		IdleClients: 20,
		STUNWorkers: 2, STUNWindow: 4, STUNDuration: 300 * time.Millisecond,
		Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	for _, tr := range []Traffic{r.Paced, r.Max} {
		if tr.Received == 0 || tr.Loss > 0.05 || tr.Mbps <= 0 || tr.P50 <= 0 || tr.P99 < tr.P50 || tr.ServerCPU <= 0 {
			t.Errorf("traffic: %+v", tr)
		}
	}
	// 2 pairs × 2 directions × 200 packets/s × 0.7 s ≈ 560 packets.
	if r.Paced.Sent < 400 || r.Paced.Sent > 700 {
		t.Errorf("paced run sent %d packets, want about 560", r.Paced.Sent)
	}
	if r.Memory.RSSKB <= 0 || r.Memory.ConnectFailed != 0 {
		t.Errorf("memory: %+v", r.Memory)
	}
	if r.STUNRate <= 0 {
		t.Errorf("STUN rate %v", r.STUNRate)
	}
}
