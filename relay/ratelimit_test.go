package relay

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/derp"
)

func TestAcceptLimiterBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAcceptLimiter(func() time.Time { return now })
	for i := 0; i < 5; i++ {
		if !a.allow() {
			t.Fatal("unlimited limiter refused")
		}
	}
	a.set(AcceptLimit{PerSec: 2, Burst: 3})
	var got []bool
	for i := 0; i < 5; i++ {
		got = append(got, a.allow())
	}
	if want := []bool{true, true, true, false, false}; !equalBools(got, want) {
		t.Errorf("a full bucket of 3: got %v, want %v", got, want)
	}
	now = now.Add(time.Second) // two tokens
	got = got[:0]
	for i := 0; i < 3; i++ {
		got = append(got, a.allow())
	}
	if want := []bool{true, true, false}; !equalBools(got, want) {
		t.Errorf("one second later at 2/s: got %v, want %v", got, want)
	}
	now = now.Add(time.Hour)
	got = got[:0]
	for i := 0; i < 4; i++ {
		got = append(got, a.allow())
	}
	if want := []bool{true, true, true, false}; !equalBools(got, want) {
		t.Errorf("an hour later: got %v, want %v (the burst caps the bucket)", got, want)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestAcceptLimit floods the DERP port with connections under a tight
// accept limit: the excess is closed at once, the server keeps serving,
// and lifting the limit lets clients in.
func TestAcceptLimit(t *testing.T) {
	tr := startRelayWith(t, t.TempDir(), relayOpts{policy: Policy{AcceptRate: AcceptLimit{PerSec: 0.01, Burst: 2}}})
	addr := tr.srv.DERPAddr().String()
	var closedAtOnce int
	for i := 0; i < 6; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF || isReset(err) {
			closedAtOnce++
		}
	}
	st := tr.srv.Status()
	if closedAtOnce != 4 || st.ConnsRejected != 4 || st.ConnsAccepted != 2 {
		t.Errorf("6 connections with a burst of 2: %d closed at once, Status accepted %d rejected %d; want 4, 2, 4", closedAtOnce, st.ConnsAccepted, st.ConnsRejected)
	}
	select {
	case err := <-tr.srv.Err():
		t.Fatalf("the server stopped: %v", err)
	default:
	}
	if err := tr.srv.Apply(Policy{}); err != nil {
		t.Fatal(err)
	}
	relaytest.Exchange(t, relaytest.Connect(t, tr.region), relaytest.Connect(t, tr.region))
}

func isReset(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("connection reset"))
}

// TestPerClientRateLimit sends as fast as a client can under a small
// per-client limit, then lifts the limit on the same connections.
func TestPerClientRateLimit(t *testing.T) {
	const rate = 100_000 // bytes/s
	tr := startRelayWith(t, t.TempDir(), relayOpts{policy: Policy{ClientRate: RateLimit{BytesPerSec: rate, BurstBytes: 70_000}}})
	a := relaytest.Connect(t, tr.region)
	b := relaytest.Connect(t, tr.region)
	relaytest.Exchange(t, a, b)

	// b counts what arrives; a sends as fast as the relay takes it.
	var received atomic.Int64
	go func() {
		for {
			m, err := b.Recv()
			if err != nil {
				return
			}
			if p, ok := m.(derp.ReceivedPacket); ok {
				received.Add(int64(len(p.Data)))
			}
		}
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		pkt := bytes.Repeat([]byte{'x'}, 1200)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := a.Send(b.Priv.Public(), pkt); err != nil {
				return
			}
		}
	}()
	// measure waits out the burst and buffers, then samples the rate.
	measure := func(settle, d time.Duration) (bytesPerSec float64) {
		time.Sleep(settle)
		n0, t0 := received.Load(), time.Now()
		time.Sleep(d)
		return float64(received.Load()-n0) / time.Since(t0).Seconds()
	}
	limited := measure(time.Second, 2*time.Second)
	// Allow for timing slack; the 70 kB burst is spent in the first
	// second.
	if limited > 1.5*rate {
		t.Errorf("throughput under a %d B/s limit: %.0f B/s", rate, limited)
	}
	if w := intVar(tr.srv.gen.Load().vars.Get("rate_limit_per_client_waited")); w == 0 {
		t.Error("rate_limit_per_client_waited is 0; the limit never engaged")
	}
	before := accepts(tr.srv)
	if err := tr.srv.Apply(Policy{}); err != nil {
		t.Fatal(err)
	}
	unlimited := measure(500*time.Millisecond, time.Second)
	t.Logf("limited %.0f B/s, unlimited %.0f B/s", limited, unlimited)
	if unlimited < 3*rate {
		t.Errorf("after lifting the limit: %.0f B/s, want far above %d", unlimited, rate)
	}
	if got := accepts(tr.srv) - before; got != 0 {
		t.Errorf("lifting the limit reconnected %d clients; it applies in place", got)
	}
}
