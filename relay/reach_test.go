package relay

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/homederp/homederp/relay/relaytest"
)

func TestReachLog(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	r := newReachLog(func() time.Time { return now })
	for _, remote := range []string{
		"198.51.100.7:41000",       // public
		"198.51.100.7:41001",       // the same client again
		"[2001:db8:ff::7]:41002",   // public IPv6
		"192.168.1.23:5000",        // LAN
		"127.0.0.1:5000",           // the box itself
		"100.101.102.103:5000",     // a tailnet (or CGNAT) address
		"[fd7a:115c:a1e0::1]:5000", // a tailnet IPv6 address
		"[::ffff:192.168.1.9]:1",   // LAN, IPv4-mapped
		"not an address",
	} {
		r.note(remote)
	}
	got := r.status()
	want := Reach{Clients: 2, Last: now, LastFrom: "2001:db8:ff::/48", LANConnections: 5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if got, want := maskAddr(netip.MustParseAddr("203.0.113.77")), "203.0.113.0/24"; got != want {
		t.Errorf("maskAddr: got %q, want %q", got, want)
	}
}

// TestReachCountsLoopbackAsLAN: a real DERP client on loopback is a
// connection from the LAN, never evidence of reachability.
func TestReachCountsLoopbackAsLAN(t *testing.T) {
	tr := startRelay(t, t.TempDir())
	// Connect may return before the server took the connection (it knows
	// the server's key from the TLS handshake); the server info frame
	// comes after.
	if v, err := relaytest.AwaitVerdict(relaytest.Connect(t, tr.region), 10*time.Second); v != relaytest.Admitted {
		t.Fatalf("verdict: %v (%v), want admitted", v, err)
	}
	if st := tr.srv.Status().Reach; st.LANConnections != 1 || st.Clients != 0 || st.LastFrom != "" {
		t.Errorf("reach: got %+v, want no Internet client", st)
	}
}

func TestTrafficHistory(t *testing.T) {
	h := NewTrafficHistory(10 * time.Minute)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		at      time.Duration
		clients int
		in, out int64
		wantIn  float64
		wantOut float64
	}{
		{0, 1, 0, 0, 0, 0},
		{time.Minute, 2, 60e6 / 8, 120e6 / 8, 1, 2},    // 1 and 2 Mbit/s
		{2 * time.Minute, 2, 30e6 / 8, 30e6 / 8, 0, 0}, // counters went back: a new relay
		{3 * time.Minute, 0, 90e6 / 8, 90e6 / 8, 1, 1},
	}
	for _, s := range steps {
		h.Add(t0.Add(s.at), Status{ClientsConnected: s.clients, BytesReceived: s.in, BytesSent: s.out})
	}
	got := h.Samples()
	if len(got) != len(steps) {
		t.Fatalf("samples: got %d, want %d", len(got), len(steps))
	}
	for i, s := range steps {
		if g := got[i]; g.Clients != s.clients || g.MbpsIn != s.wantIn || g.MbpsOut != s.wantOut {
			t.Errorf("sample %d: got %+v, want %d clients, %v/%v Mbit/s", i, g, s.clients, s.wantIn, s.wantOut)
		}
	}
	h.Add(t0.Add(12*time.Minute+30*time.Second), Status{})
	if got := h.Samples(); len(got) != 2 || !got[0].Time.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("after 12.5 min with 10 min kept: got %+v", got)
	}
}
