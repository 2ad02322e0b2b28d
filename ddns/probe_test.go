package ddns_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/detect"
)

// stepUntil steps clock from timer to timer until cond holds, at most
// limit steps, each bounded in real time.
func stepUntil(t testing.TB, clock *ddnstest.Clock, limit int, what string, cond func() bool) {
	t.Helper()
	for range limit {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := clock.Idle(ctx)
		if err == nil && cond() {
			cancel()
			return
		}
		if err == nil {
			_, err = clock.Step(ctx)
		}
		cancel()
		if err != nil {
			t.Fatalf("%s: the updater stopped waiting on its clock: %v", what, err)
		}
	}
	t.Fatalf("%s: not within %d steps", what, limit)
}

// run starts u.Run and returns a function that stops it, which also
// runs when the test ends.
func run(t testing.TB, u *ddns.Updater) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

// hookProber runs after once, when the next STUN probe returns.
type hookProber struct {
	*detect.Detector
	after func()
}

func (h *hookProber) ProbeSTUN(ctx context.Context) detect.Observation {
	o := h.Detector.ProbeSTUN(ctx)
	if h.after != nil {
		h.after()
		h.after = nil
	}
	return o
}

// TestProbes runs the updater with its default schedule (a full check
// every 2 min, a probe every 30 s) on a stepped clock: an hour of steady
// state costs one STUN request per probe and no API call, a new address
// is published within one probe interval, and a probe's false alarm stops
// the probes until the next scheduled check.
func TestProbes(t *testing.T) {
	w := newWorld(t)
	clock := ddnstest.NewClock()
	prober := &hookProber{Detector: w.cfg.Detector.(*detect.Detector)}
	w.cfg.Prober = prober
	w.cfg.Clock = clock
	w.cfg.Rand = func() float64 { return 0.5 } // no jitter
	w.cfg.RedetectDelay, w.cfg.ConfirmStart, w.cfg.ConfirmTimeout = 0, 0, 0
	u := w.updater(t)
	run(t, u)
	stepUntil(t, clock, 20, "first publication", func() bool { return w.cf.Writes() == 1 && u.Status().LastError == "" })

	stun := func() int64 { return w.stun1.Hits() + w.stun2.Hits() }
	t.Run("steady state", func(t *testing.T) {
		api, hits, checks := w.cf.Requests(), stun(), w.who.Queries()
		start := clock.Now()
		stepUntil(t, clock, 1000, "an hour", func() bool { return clock.Since(start) >= time.Hour })
		gotChecks := w.who.Queries() - checks // one whoami query per full check
		probes := stun() - hits - 2*gotChecks
		t.Logf("in an hour: %d full checks, %d probes, %v virtual", gotChecks, probes, clock.Since(start))
		if gotChecks < 29 || gotChecks > 31 || probes < 89 || probes > 91 {
			t.Errorf("in an hour: %d full checks and %d probes, want 30 and 90", gotChecks, probes)
		}
		if got := w.cf.Requests() - api; got != 0 {
			t.Errorf("API requests in an hour of steady state: got %d, want 0", got)
		}
	})

	t.Run("a new address within one probe interval", func(t *testing.T) {
		api := w.cf.Requests()
		w.setPublic(newIP)
		start := clock.Now()
		stepUntil(t, clock, 20, "the new address", func() bool { return w.theA(t) == newIP.String() && u.Status().LastError == "" })
		took := u.Status().LastChange.Sub(start)
		if took <= 0 || took >= 2*time.Minute {
			t.Errorf("new address verified %v after the change, want within one probe interval (30s) and the 2s redetection", took)
		}
		if got := w.cf.Requests() - api; got > 2 {
			t.Errorf("API requests for the change: got %d, want at most 2", got)
		}
		t.Logf("new address verified %v after the change", took)
	})

	t.Run("false alarm", func(t *testing.T) {
		// One STUN server lies for one probe: the full check it starts
		// finds the line as it was, and no probe runs until the next
		// scheduled check.
		checks := w.who.Queries()
		w.stun1.Report(netip.MustParseAddr("192.0.2.66"))
		w.stun2.Report(netip.MustParseAddr("192.0.2.66"))
		prober.after = func() { w.setPublic(newIP) }
		stepUntil(t, clock, 10, "the alarm's full check", func() bool { return w.who.Queries() > checks })
		if st := u.Status(); st.LastError != "" || st.PublicIPv4 != newIP {
			t.Fatalf("after the false alarm: %+v", st)
		}
		hits := stun()
		checks = w.who.Queries()
		stepUntil(t, clock, 10, "the next scheduled check", func() bool { return w.who.Queries() > checks })
		if got := stun() - hits; got != 2 {
			t.Errorf("STUN requests until the next scheduled check: got %d, want only that check's 2", got)
		}
		// ... after which the probes resume.
		hits = stun()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := clock.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := clock.Idle(ctx); err != nil {
			t.Fatal(err)
		}
		if got := stun() - hits; got != 1 {
			t.Errorf("STUN requests in the step after the scheduled check: got %d, want 1 (a probe)", got)
		}
	})

	t.Run("behind CGNAT probes send nothing", func(t *testing.T) {
		w.setPublic(netip.MustParseAddr("100.64.7.8"))
		stepUntil(t, clock, 10, "the CGNAT verdict", func() bool { return u.Status().NoIPv4 })
		hits, checks := stun(), w.who.Queries()
		start := clock.Now()
		stepUntil(t, clock, 100, "ten minutes", func() bool { return clock.Since(start) >= 10*time.Minute })
		if w.who.Queries() == checks {
			t.Fatal("no full check in ten minutes")
		}
		if got, want := stun()-hits, 2*(w.who.Queries()-checks); got != want {
			t.Errorf("STUN requests in ten minutes behind CGNAT: got %d, want %d (only the full checks')", got, want)
		}
	})
}
