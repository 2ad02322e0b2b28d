package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/testenv"
)

// Bounds of TestFloods. HOMEDERP_SOAK_PHASE (e.g. "60s", set by
// scripts/bench-soak.sh) lengthens every phase for the long form;
// HOMEDERP_SOAK_ONLY (e.g. "derp-churn,stun-junk") runs only those.
const (
	defaultPhase = 3 * time.Second
	// settleLimit bounds the wait, after a phase, for the appliance to
	// come back to its level from before the phase: the half-open
	// connections need the relay's 10 s handshake timeout.
	settleLimit = 40 * time.Second
	// slack is how far above its starting level a resource may stay.
	slack = 0.10
	// maxRealGap is the longest the real clients may go without a
	// packet arriving (they send one every 20 ms each way).
	maxRealGap = 2 * time.Second
)

// phaseResult is what the test records about one phase.
type phaseResult struct {
	Name       string        `json:"name"`
	Seconds    float64       `json:"seconds"`
	Ops        int64         `json:"ops"`
	OpsPerMin  float64       `json:"ops_per_minute"`
	Bad        int64         `json:"bad"`
	Slow       int64         `json:"slow_dials"` // connections the load generator's dial timeout gave up on
	Before     level         `json:"before"`
	Peak       level         `json:"peak"`
	After      level         `json:"after"`
	SettledIn  float64       `json:"settled_in_seconds"`
	RealSent   int64         `json:"real_sent"`
	RealRecv   int64         `json:"real_recv"`
	RealMaxGap time.Duration `json:"real_max_gap_ns"`
	STUNProbes string        `json:"stun_probes,omitempty"` // "answered/sent" during the phase
}

// TestFloods runs the real `appliance -dev` on loopback and floods it,
// one kind of flood after the other: DERP clients connecting and
// disconnecting by the thousand a minute, half-open TLS handshakes,
// garbage on the DERP port, junk on the STUN port from spoofed-looking
// sources, and web UI requests with and without the password. Through
// every phase two real derphttp clients keep exchanging packets, and
// after each phase the appliance's RSS, open files and goroutines must
// come back to within 10 % of where they were before it. The curves (a
// sample a second) and a summary per phase are written to
// $HOMEDERP_TEST_OUTPUT/soak/.
func TestFloods(t *testing.T) {
	testenv.NeedLong(t)
	phaseDur := defaultPhase
	if v := os.Getenv("HOMEDERP_SOAK_PHASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("HOMEDERP_SOAK_PHASE=%q: %v", v, err)
		}
		phaseDur = d
	}

	bin := devbox.Build(t)
	stateDir := t.TempDir()
	derpPort, stunPort := devbox.FreePort(t), devbox.FreePort(t)
	box := devbox.Start(t, bin, devbox.Options{StateDir: stateDir, DERPPort: derpPort, STUNPort: stunPort, WebUIAddr: "127.0.0.1:0"})
	webURL, password, ok := box.WebUI()
	if !ok {
		t.Fatalf("no web UI in the summary:\n%s", box.Summary)
	}
	region := devbox.ReadMap(t, stateDir).Regions[900]
	derpAddr := fmt.Sprintf("127.0.0.1:%d", derpPort)
	stunAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(stunPort))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &watcher{pid: box.Pid(), metrics: webURL + "metrics", password: password, http: &http.Client{Timeout: 10 * time.Second}, start: time.Now()}
	w.pair = startRealPair(t, ctx, region)
	w.setPhase("idle", nil)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		w.run(ctx)
	}()

	var probeSent, probeOK atomic.Int64
	phases := []struct {
		name    string
		flood   func(context.Context, *floodStats)
		minRate float64 // operations a minute the flood must reach
		// maxBad is the share of operations that may go wrong: a
		// connection refused, reset or answered wrongly.
		maxBad float64
		// maxSlow is the share of operations whose dial may time out
		// (floodStats.slow): on CI's 2 cores, beside the image builds
		// of other packages, up to 2 % of the churn's dials did, and
		// 3 % beside two `go build -a`. The kernel completes a loopback
		// handshake by itself (no listen overflows were counted), so
		// these are the generator's own delays; a relay that stopped
		// answering fails the TLS or server-info step, which is bad.
		maxSlow float64
	}{
		{"derp-churn", churnDERP(region), 2000, 0.01, 0.10},
		{"half-open-tls", halfOpenTLS(derpAddr), 0, 0, 0},
		{"derp-garbage", garbageDERP(derpAddr), 1000, 0, 0},
		{"stun-junk", stunJunk(stunAddr, &probeSent, &probeOK), 100000, 0, 0},
		{"webui-no-password", webUIFlood(webURL, "", netip.MustParseAddr("127.0.0.2")), 2000, 0, 0},
		{"webui-password", webUIFlood(webURL, password, netip.MustParseAddr("127.0.0.3")), 2000, 0, 0},
	}

	if only := os.Getenv("HOMEDERP_SOAK_ONLY"); only != "" {
		keep := phases[:0]
		for _, p := range phases {
			if strings.Contains(","+only+",", ","+p.name+",") {
				keep = append(keep, p)
			}
		}
		phases = keep
	}

	// A short warm-up of every flood first: the starting levels are
	// those of a box that has served each kind of request once (TLS,
	// templates and buffers set up), not of one that never did.
	t.Log("warm-up")
	for _, p := range phases {
		wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		p.flood(wctx, &floodStats{})
		wcancel()
	}
	start := settle(t, ctx, w, nil, settleLimit)

	var results []phaseResult
	for _, p := range phases {
		before, err := w.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st := &floodStats{}
		w.setPhase(p.name, &st.ops)
		sent0, recv0 := w.pair.sent.Load(), w.pair.recv.Load()
		probeSent0, probeOK0 := probeSent.Load(), probeOK.Load()
		w.pair.takeMaxGap()
		began := time.Now()
		pctx, pcancel := context.WithTimeout(ctx, phaseDur)
		p.flood(pctx, st)
		pcancel()
		el := time.Since(began)
		r := phaseResult{
			Name: p.name, Seconds: el.Seconds(), Ops: st.ops.Load(), Bad: st.bad.Load(), Slow: st.slow.Load(), Before: before,
			RealSent: w.pair.sent.Load() - sent0, RealRecv: w.pair.recv.Load() - recv0, RealMaxGap: w.pair.takeMaxGap(),
		}
		// The flood counts only what it had finished when it ended;
		// the phase lasted until its last operation did.
		r.OpsPerMin = float64(r.Ops) / el.Minutes()
		if p.name == "stun-junk" {
			r.STUNProbes = fmt.Sprintf("%d/%d", probeOK.Load()-probeOK0, probeSent.Load()-probeSent0)
		}
		w.setPhase(p.name+"-settle", nil)
		settled := time.Now()
		r.After = settle(t, ctx, w, &before, settleLimit)
		r.SettledIn = time.Since(settled).Seconds()
		r.Peak = w.peak(p.name)
		results = append(results, r)
		t.Logf("%s: %d ops in %.1fs (%.0f/min), %d bad, %d slow dials; RSS %d→%d→%d KiB, fds %d→%d→%d, goroutines %d→%d→%d, settled in %.1fs; real clients %d/%d packets, longest gap %v %s",
			r.Name, r.Ops, r.Seconds, r.OpsPerMin, r.Bad, r.Slow,
			r.Before.RSSKiB, r.Peak.RSSKiB, r.After.RSSKiB, r.Before.FDs, r.Peak.FDs, r.After.FDs, r.Before.Goroutines, r.Peak.Goroutines, r.After.Goroutines,
			r.SettledIn, r.RealRecv, r.RealSent, r.RealMaxGap.Round(time.Millisecond), r.STUNProbes)

		if r.OpsPerMin < p.minRate {
			t.Errorf("%s: %.0f operations a minute, want at least %.0f", p.name, r.OpsPerMin, p.minRate)
		}
		if float64(r.Bad) > p.maxBad*float64(r.Ops) {
			t.Errorf("%s: %d operations went wrong (of %d), the last: %s", p.name, r.Bad, r.Ops, st.why())
		}
		if float64(r.Slow) > p.maxSlow*float64(r.Ops) {
			t.Errorf("%s: %d dials timed out (of %d operations), want at most %.0f %%", p.name, r.Slow, r.Ops, 100*p.maxSlow)
		}
		if r.RealMaxGap > maxRealGap || r.RealRecv < r.RealSent*9/10 {
			t.Errorf("%s: the real clients got %d of %d packets, longest gap %v; want them flowing throughout (gap under %v)", p.name, r.RealRecv, r.RealSent, r.RealMaxGap, maxRealGap)
		}
		if p.name == "stun-junk" {
			if ok, sent := probeOK.Load()-probeOK0, probeSent.Load()-probeSent0; sent == 0 || ok < sent*8/10 {
				t.Errorf("stun-junk: %d of %d real binding requests answered during the junk, want 80 %%", ok, sent)
			}
		}
	}
	if n := w.pair.recvErrs.Load(); n > 0 {
		t.Errorf("the real clients' connections dropped %d times; want them kept through every flood", n)
	}

	cancel()
	<-watchDone
	w.mu.Lock()
	if len(w.errs) > 0 {
		t.Errorf("sampling failed %d times, first: %s", len(w.errs), w.errs[0])
	}
	w.mu.Unlock()
	end := results[len(results)-1].After
	t.Logf("whole run: RSS %d→%d KiB, fds %d→%d, goroutines %d→%d, threads %d→%d", start.RSSKiB, end.RSSKiB, start.FDs, end.FDs, start.Goroutines, end.Goroutines, start.Threads, end.Threads)
	writeFloodResults(t, phaseDur, start, results, w.csv())
	box.Stop(t)
}

// settle waits, at most limit, until the appliance's RSS, open files and
// goroutines are within slack of before (nil: until they stop falling)
// and returns the level it reached. It fails t if they do not.
func settle(t *testing.T, ctx context.Context, w *watcher, before *level, limit time.Duration) level {
	t.Helper()
	deadline := time.Now().Add(limit)
	var l level
	var err error
	var prev *level
	for {
		l, err = w.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case before != nil && within(l, *before):
			return l
		case before == nil && prev != nil && l.Goroutines <= prev.Goroutines && l.FDs <= prev.FDs:
			return l
		case time.Now().After(deadline):
			if before != nil {
				t.Errorf("not back within %v: RSS %d KiB (before %d), fds %d (%d), goroutines %d (%d); want within %.0f %%",
					limit, l.RSSKiB, before.RSSKiB, l.FDs, before.FDs, l.Goroutines, before.Goroutines, slack*100)
			}
			return l
		}
		prev = &l
		time.Sleep(time.Second)
	}
}

func within(l, before level) bool {
	ok := func(v, b int64) bool { return float64(v) <= float64(b)*(1+slack) }
	return ok(l.RSSKiB, before.RSSKiB) && ok(int64(l.FDs), int64(before.FDs)) && ok(int64(l.Goroutines), int64(before.Goroutines))
}

// peak is the highest reading of each resource during a phase.
func (w *watcher) peak(phase string) level {
	w.mu.Lock()
	defer w.mu.Unlock()
	var p level
	for _, s := range w.samples {
		if s.Phase != phase {
			continue
		}
		p.RSSKiB, p.FDs = max(p.RSSKiB, s.RSSKiB), max(p.FDs, s.FDs)
		p.Threads, p.Goroutines = max(p.Threads, s.Threads), max(p.Goroutines, s.Goroutines)
	}
	return p
}

// writeFloodResults puts the curve and the summary where the test output
// goes (./test-output/soak with ./test.sh), or into the test's log dir.
func writeFloodResults(t *testing.T, phase time.Duration, start level, results []phaseResult, csv string) {
	dir := t.TempDir()
	if out := os.Getenv("HOMEDERP_TEST_OUTPUT"); out != "" {
		dir = filepath.Join(out, "soak")
	}
	if err := os.MkdirAll(dir, 0755); err != nil {
		t.Fatal(err)
	}
	summary, err := json.MarshalIndent(struct {
		Phase   string        `json:"phase_duration"`
		Start   level         `json:"start"`
		Results []phaseResult `json:"phases"`
	}{phase.String(), start, results}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"floods.csv": []byte(csv), "floods.json": append(summary, '\n')} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("curves in %s (one sample a second), summary in %s", filepath.Join(dir, "floods.csv"), filepath.Join(dir, "floods.json"))
	if testing.Verbose() {
		t.Logf("floods.csv:\n%s", strings.TrimSpace(csv))
	}
}
