package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homederp/homederp/relay/derpload"
	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/derp"
	"tailscale.com/tailcfg"
)

// What TestFloods watches on the running appliance, once a second: the
// process from /proc (RSS, open files, threads), its goroutines from the
// web UI's /metrics (LAN side; the public port has no debug endpoint),
// and two real derphttp clients that keep exchanging packets.

// level is one reading of the appliance's resources.
type level struct {
	RSSKiB     int64 `json:"rss_kib"`
	AnonKiB    int64 `json:"rss_anon_kib"` // of RSSKiB: the heap, stacks and runtime
	FileKiB    int64 `json:"rss_file_kib"` // of RSSKiB: the binary's pages
	FDs        int   `json:"fds"`
	Threads    int   `json:"threads"`
	Goroutines int   `json:"goroutines"`
}

// sample is one second of the recorded curve.
type sample struct {
	T        float64 `json:"t"` // seconds since the watch started
	Phase    string  `json:"phase"`
	level            // of the appliance
	Ops      int64   `json:"ops"`       // the flood's operations so far in this phase
	RealSent int64   `json:"real_sent"` // packets the real clients sent so far
	RealRecv int64   `json:"real_recv"` // ... and received
}

// watcher samples the appliance.
type watcher struct {
	pid      int
	metrics  string // the web UI's /metrics URL
	password string
	http     *http.Client
	start    time.Time

	mu      sync.Mutex
	phase   string
	ops     *atomic.Int64
	samples []sample
	errs    []string

	pair *realPair
}

func (w *watcher) read(ctx context.Context) (level, error) {
	var l level
	var err error
	if l.RSSKiB, err = derpload.ProcRSS(w.pid); err != nil {
		return l, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.pid))
	if err != nil {
		return l, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		name, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch name {
		case "RssAnon":
			l.AnonKiB = n
		case "RssFile":
			l.FileKiB = n
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", w.pid))
	if err != nil {
		return l, err
	}
	l.FDs = len(fds)
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", w.pid))
	if err != nil {
		return l, err
	}
	l.Threads = len(tasks)
	l.Goroutines, err = w.goroutines(ctx)
	return l, err
}

// goroutines reads the "goroutines" gauge from /metrics, as the user
// sees it (Basic auth with the gokrazy password).
func (w *watcher) goroutines(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", w.metrics, nil)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth("gokrazy", w.password)
	resp, err := w.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", w.metrics, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "goroutines "); ok {
			return strconv.Atoi(v)
		}
	}
	io.Copy(io.Discard, resp.Body)
	return 0, fmt.Errorf("GET %s: no goroutines gauge", w.metrics)
}

// run samples once a second until ctx ends.
func (w *watcher) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l, err := w.read(ctx)
		w.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				w.errs = append(w.errs, err.Error())
			}
			w.mu.Unlock()
			continue
		}
		s := sample{T: time.Since(w.start).Seconds(), Phase: w.phase, level: l, RealSent: w.pair.sent.Load(), RealRecv: w.pair.recv.Load()}
		if w.ops != nil {
			s.Ops = w.ops.Load()
		}
		w.samples = append(w.samples, s)
		w.mu.Unlock()
	}
}

// setPhase labels the samples from now on.
func (w *watcher) setPhase(name string, ops *atomic.Int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.phase, w.ops = name, ops
}

// csv is the recorded curve.
func (w *watcher) csv() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	b.WriteString("t_s,phase,rss_kib,rss_anon_kib,rss_file_kib,fds,threads,goroutines,ops,real_sent,real_recv\n")
	for _, s := range w.samples {
		fmt.Fprintf(&b, "%.1f,%s,%d,%d,%d,%d,%d,%d,%d,%d,%d\n", s.T, s.Phase, s.RSSKiB, s.AnonKiB, s.FileKiB, s.FDs, s.Threads, s.Goroutines, s.Ops, s.RealSent, s.RealRecv)
	}
	return b.String()
}

// realPair is two real derphttp clients sending each other a packet
// every 20 ms in each direction, counting what arrives and the longest
// time between two arrivals.
type realPair struct {
	a, b       *relaytest.Client
	sent, recv atomic.Int64
	lastRecv   atomic.Int64 // unix nanoseconds
	maxGap     atomic.Int64 // nanoseconds, since the last reset
	recvErrs   atomic.Int64 // Recv errors: a dropped connection
}

func startRealPair(t *testing.T, ctx context.Context, region *tailcfg.DERPRegion) *realPair {
	p := &realPair{a: relaytest.Connect(t, region), b: relaytest.Connect(t, region)}
	relaytest.Exchange(t, p.a, p.b)
	p.lastRecv.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	for _, c := range []*relaytest.Client{p.a, p.b} {
		wg.Go(func() { p.receive(ctx, c) })
	}
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			msg := []byte(fmt.Sprintf("real %d", i))
			if p.a.Send(p.b.Priv.Public(), msg) == nil {
				p.sent.Add(1)
			}
			if p.b.Send(p.a.Priv.Public(), msg) == nil {
				p.sent.Add(1)
			}
		}
	})
	t.Cleanup(func() {
		p.a.Close()
		p.b.Close()
		wg.Wait()
	})
	return p
}

func (p *realPair) receive(ctx context.Context, c *relaytest.Client) {
	for ctx.Err() == nil {
		m, err := c.Recv()
		if err != nil {
			if ctx.Err() == nil {
				p.recvErrs.Add(1)
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		if pk, ok := m.(derp.ReceivedPacket); ok && strings.HasPrefix(string(pk.Data), "real ") {
			now := time.Now().UnixNano()
			if gap := now - p.lastRecv.Swap(now); gap > p.maxGap.Load() {
				p.maxGap.Store(gap)
			}
			p.recv.Add(1)
		}
	}
}

// takeMaxGap returns the longest gap between arrivals since the last
// call and starts a new measurement.
func (p *realPair) takeMaxGap() time.Duration {
	gap := max(p.maxGap.Swap(0), time.Now().UnixNano()-p.lastRecv.Load())
	return time.Duration(gap)
}
