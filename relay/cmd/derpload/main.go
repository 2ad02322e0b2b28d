// The derpload command benchmarks the homederp appliance, the program a
// box runs, against upstream derper built from the same tailscale.com
// version, in one run: both serve the same self-signed certificate in
// manual mode on loopback, each as its own process, and get the same load
// from real derphttp clients (see package derpload). It prints a Markdown
// table: each server's median over the rounds, the ratio of those
// medians, and the median of the per-round ratios with its 95 %
// confidence interval and range.
//
// It runs at least -rounds rounds and goes on, up to -max-rounds, until
// the confidence interval of each headline ratio (throughput, STUN rate,
// memory with idle clients) is at most -precision wide, so that the
// table can tell a 5 % difference from the machine's noise; the last line
// says whether it got there.
//
//	go run ./relay/cmd/derpload -rounds 9 -max-rounds 30 -duration 10s
//
// Without -appliance and -derper it builds
// github.com/homederp/homederp/appliance and tailscale.com/cmd/derper
// itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/homederp/homederp/relay/derpload"
)

var (
	applianceBin = flag.String("appliance", "", "The appliance binary to measure; empty builds github.com/homederp/homederp/appliance.")
	derperBin    = flag.String("derper", "", "The upstream derper binary to measure; empty builds tailscale.com/cmd/derper from this module's pinned version.")
	minRounds    = flag.Int("rounds", 6, "Rounds to run at least (6 is the fewest with a 95% interval for a median); in each both servers run side by side and every measurement alternates between them (which goes first alternates by round).")
	maxRounds    = flag.Int("max-rounds", 30, "Rounds to run at most while the headline ratios' intervals are wider than -precision.")
	precision    = flag.Float64("precision", 0.05, "Stop once the 95% interval of each headline ratio is at most this wide, relative to the ratio (0.05: 5%).")
	pairs        = flag.Int("pairs", 10, "Client pairs; each client sends to its partner.")
	window       = flag.Int("window", 16, "Packets each client keeps in flight in the throughput run.")
	size         = flag.Int("size", 1200, "Payload bytes per packet.")
	duration     = flag.Duration("duration", 8*time.Second, "How long each throughput run sends.")
	idle         = flag.Int("idle", 1000, "Idle clients for the memory test.")
	stunWorkers  = flag.Int("stun-workers", 4, "UDP sockets sending STUN requests.")
	stunWindow   = flag.Int("stun-window", 16, "STUN requests each socket keeps outstanding.")
	stunDur      = flag.Duration("stun-duration", 6*time.Second, "How long the STUN run of a server lasts, in six alternating slices.")
	verbose      = flag.Bool("v", false, "Show the servers' logs.")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "hd-relay-derpload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *applianceBin == "" {
		*applianceBin = filepath.Join(dir, "appliance")
		if err := build(*applianceBin, "github.com/homederp/homederp/appliance"); err != nil {
			return err
		}
	}
	if *derperBin == "" {
		*derperBin = filepath.Join(dir, "derper")
		if err := build(*derperBin, "tailscale.com/cmd/derper"); err != nil {
			return err
		}
	}
	var logw io.Writer = io.Discard
	if *verbose {
		logw = os.Stderr
	}
	bench, err := derpload.NewBench(dir, logw)
	if err != nil {
		return err
	}
	opts := derpload.Options{
		Pairs: *pairs, Window: *window, Size: *size, Duration: *duration,
		IdleClients: *idle,
		STUNWorkers: *stunWorkers, STUNWindow: *stunWindow, STUNDuration: *stunDur,
	}
	// Both servers run side by side for a round and every measurement
	// alternates between them, so that the load of whatever else runs on
	// the machine falls on both alike.
	var ours, up []derpload.Result
	for r := 0; r < *maxRounds; r++ {
		res, err := round(ctx, bench, opts, r%2 == 1)
		if err != nil {
			return err
		}
		log.Printf("round %d appliance: %+v", r+1, res[0])
		log.Printf("round %d derper: %+v", r+1, res[1])
		ours, up = append(ours, res[0]), append(up, res[1])
		if len(ours) >= *minRounds {
			wide := wideHeadlines(ours, up)
			if len(wide) == 0 {
				break
			}
			log.Printf("after %d rounds, wider than %.0f%%: %s", len(ours), 100**precision, strings.Join(wide, ", "))
		}
	}
	fmt.Print(table(ours, up))
	fmt.Print(binarySizes())
	if wide := wideHeadlines(ours, up); len(wide) > 0 {
		fmt.Printf("\nAfter %d rounds the 95%% interval is still wider than %.0f%% for: %s. Run longer (-duration) or more rounds on a quieter machine.\n", len(ours), 100**precision, strings.Join(wide, ", "))
	} else {
		fmt.Printf("\nEvery headline ratio's 95%% interval is at most %.0f%% wide after %d rounds.\n", 100**precision, len(ours))
	}
	return nil
}

// round measures both servers, alternating, and returns the appliance's
// and derper's results.
func round(ctx context.Context, bench *derpload.Bench, o derpload.Options, derperFirst bool) ([2]derpload.Result, error) {
	var res [2]derpload.Result
	pa, err := bench.StartAppliance(ctx, *applianceBin)
	if err != nil {
		return res, err
	}
	defer pa.Stop()
	pd, err := bench.StartDerper(ctx, *derperBin)
	if err != nil {
		return res, err
	}
	defer pd.Stop()
	targets := []*derpload.Process{pa, pd}
	idx := []int{0, 1}
	if derperFirst {
		idx = []int{1, 0}
	}
	res[0].Name, res[1].Name = "appliance", "derper"
	steps := []struct {
		what string
		do   func(t derpload.Target, r *derpload.Result) error
	}{
		{"idle clients", func(t derpload.Target, r *derpload.Result) (err error) {
			r.Memory, err = derpload.IdleMemory(ctx, t, o.IdleClients)
			return err
		}},
		{"throughput", func(t derpload.Target, r *derpload.Result) (err error) {
			r.Max, err = derpload.RunTraffic(ctx, t, o.Pairs, o.Window, o.Size, o.Duration)
			return err
		}},
	}
	for _, st := range steps {
		for _, i := range idx {
			log.Printf("%s: %s", targets[i].Name, st.what)
			if err := st.do(targets[i].Target, &res[i]); err != nil {
				return res, fmt.Errorf("%s: %s: %w", targets[i].Name, st.what, err)
			}
		}
	}
	// A STUN request costs the server next to nothing, so the rate
	// follows whatever else the machine does from moment to moment:
	// measure it in short slices, alternating.
	const stunSlices = 6
	var answered [2]float64
	for range stunSlices {
		for _, i := range idx {
			rate, err := derpload.STUNLoad(ctx, targets[i].STUN, o.STUNWorkers, o.STUNWindow, o.STUNDuration/stunSlices)
			if err != nil {
				return res, fmt.Errorf("%s: STUN: %w", targets[i].Name, err)
			}
			answered[i] += rate
		}
	}
	for i := range res {
		res[i].STUNRate = answered[i] / stunSlices
	}
	return res, nil
}

func build(out, pkg string) error {
	log.Printf("building %s", pkg)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w", pkg, err)
	}
	return nil
}

// row is one metric of the table.
type row struct {
	name     string
	f        func(derpload.Result) float64
	format   string
	ratio    bool // a ratio column makes sense (not for a loss of 0)
	headline bool // the run goes on until its ratio is precise
}

func rows() []row {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return []row{
		{fmt.Sprintf("throughput: packets/s (%d pairs, %d in flight per client)", *pairs, *window), func(r derpload.Result) float64 { return r.Max.PacketsPerSec }, "%.0f", true, true},
		{"throughput: Mbit/s", func(r derpload.Result) float64 { return r.Max.Mbps }, "%.1f", true, false},
		{"throughput: loss %", func(r derpload.Result) float64 { return 100 * r.Max.Loss }, "%.3f", false, false},
		{"throughput: p50 latency ms", func(r derpload.Result) float64 { return ms(r.Max.P50) }, "%.2f", true, false},
		{"throughput: p99 latency ms", func(r derpload.Result) float64 { return ms(r.Max.P99) }, "%.2f", true, false},
		{"throughput: server CPU s/GB", func(r derpload.Result) float64 { return r.Max.CPUSecPerGB }, "%.2f", true, false},
		{"throughput: load generator CPU s", func(r derpload.Result) float64 { return r.Max.ClientCPU.Seconds() }, "%.1f", true, false},
		{fmt.Sprintf("RSS with %d idle clients, MiB", *idle), func(r derpload.Result) float64 { return float64(r.Memory.RSSKB) / 1024 }, "%.1f", true, true},
		{"RSS before the clients, MiB", func(r derpload.Result) float64 { return float64(r.Memory.RSSBeforeKB) / 1024 }, "%.1f", true, false},
		{"RSS per idle client, KiB", func(r derpload.Result) float64 { return r.Memory.PerClientKB }, "%.1f", true, false},
		{"STUN requests/s", func(r derpload.Result) float64 { return r.STUNRate }, "%.0f", true, true},
	}
}

// ratios are the per-round ratios appliance/derper of r.
func ratios(r row, ours, up []derpload.Result) []float64 {
	var v []float64
	for i := range min(len(ours), len(up)) {
		if d := r.f(up[i]); d != 0 {
			v = append(v, r.f(ours[i])/d)
		}
	}
	return v
}

func values(r row, rs []derpload.Result) []float64 {
	var v []float64
	for _, x := range rs {
		v = append(v, r.f(x))
	}
	return v
}

// wideHeadlines names the headline rows whose ratio's interval is wider
// than -precision.
func wideHeadlines(ours, up []derpload.Result) []string {
	var wide []string
	for _, r := range rows() {
		if r.headline {
			if w := derpload.SpreadOf(ratios(r, ours, up)).Width(); w > *precision {
				wide = append(wide, fmt.Sprintf("%s (%.1f%%)", r.name, 100*w))
			}
		}
	}
	return wide
}

func table(ours, up []derpload.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| metric (%d rounds) | appliance (median) | derper (median) | ratio of the medians | per-round ratio: median [95%% interval] (range) |\n|---|---:|---:|---:|---|\n", len(ours))
	for _, r := range rows() {
		o, u := derpload.SpreadOf(values(r, ours)), derpload.SpreadOf(values(r, up))
		ratio, spread := "–", "–"
		if r.ratio && u.Median != 0 {
			ratio = fmt.Sprintf("%.3f", o.Median/u.Median)
			s := derpload.SpreadOf(ratios(r, ours, up))
			interval := "no interval yet"
			if !math.IsNaN(s.Lo) {
				interval = fmt.Sprintf("%.3f–%.3f", s.Lo, s.Hi)
			}
			spread = fmt.Sprintf("%.3f [%s] (%.3f–%.3f)", s.Median, interval, s.Min, s.Max)
		}
		fmt.Fprintf(&b, "| %s | "+r.format+" | "+r.format+" | %s | %s |\n", r.name, o.Median, u.Median, ratio, spread)
	}
	return b.String()
}

// binarySizes is a line on the two binaries measured.
func binarySizes() string {
	size := func(p string) string {
		fi, err := os.Stat(p)
		if err != nil {
			return "?"
		}
		return fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20))
	}
	return fmt.Sprintf("\nBinaries: appliance %s, derper %s.\n", size(*applianceBin), size(*derperBin))
}
