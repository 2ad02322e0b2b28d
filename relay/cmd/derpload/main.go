// The derpload command benchmarks homederp's relay against upstream
// derper built from the same tailscale.com version, in one run: both
// serve the same self-signed certificate in manual mode on loopback, each
// as its own process, and get the same load from real derphttp clients
// (see package derpload). It prints a Markdown table of medians over the
// rounds with the ratio homederp/derper.
//
//	go run ./relay/cmd/derpload -rounds 7
//
// Without -homederp and -derper it builds relay/cmd/relayd and
// tailscale.com/cmd/derper itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/homederp/homederp/relay/derpload"
)

var (
	homederpBin = flag.String("homederp", "", "The relayd binary to measure; empty builds github.com/homederp/homederp/relay/cmd/relayd.")
	derperBin   = flag.String("derper", "", "The upstream derper binary to measure; empty builds tailscale.com/cmd/derper from this module's pinned version.")
	rounds      = flag.Int("rounds", 7, "How many rounds to run; in each both servers run side by side and every measurement alternates between them (which goes first alternates by round). The table shows medians.")
	pairs       = flag.Int("pairs", 10, "Client pairs; each client sends to its partner.")
	rate        = flag.Float64("rate", 1000, "Packets per second each client sends in the paced run.")
	window      = flag.Int("window", 16, "Packets each client keeps in flight in the maximum-throughput run.")
	size        = flag.Int("size", 1200, "Payload bytes per packet.")
	duration    = flag.Duration("duration", 8*time.Second, "How long each traffic run sends.")
	idle        = flag.Int("idle", 1000, "Idle clients for the memory test.")
	stunWorkers = flag.Int("stun-workers", 4, "UDP sockets sending STUN requests.")
	stunWindow  = flag.Int("stun-window", 16, "STUN requests each socket keeps outstanding.")
	stunDur     = flag.Duration("stun-duration", 5*time.Second, "How long the STUN run lasts.")
	verbose     = flag.Bool("v", false, "Show the servers' logs.")
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
	if *homederpBin == "" {
		*homederpBin = filepath.Join(dir, "relayd")
		if err := build(*homederpBin, "github.com/homederp/homederp/relay/cmd/relayd"); err != nil {
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
		Pairs: *pairs, Rate: *rate, Window: *window, Size: *size, Duration: *duration,
		IdleClients: *idle,
		STUNWorkers: *stunWorkers, STUNWindow: *stunWindow, STUNDuration: *stunDur,
		Logf: log.Printf,
	}
	// Both servers run side by side for a round and every measurement
	// alternates between them, so that the load of whatever else runs on
	// the machine falls on both alike; the ratio column is the median of
	// the per-round ratios.
	var ours, up []derpload.Result
	for r := 0; r < *rounds; r++ {
		res, err := round(ctx, bench, opts, r%2 == 1)
		if err != nil {
			return err
		}
		log.Printf("round %d homederp: %+v", r+1, res[0])
		log.Printf("round %d derper: %+v", r+1, res[1])
		ours, up = append(ours, res[0]), append(up, res[1])
	}
	fmt.Print(table(ours, up))
	return nil
}

// round measures both servers, alternating, and returns homederp's and
// derper's results.
func round(ctx context.Context, bench *derpload.Bench, o derpload.Options, derperFirst bool) ([2]derpload.Result, error) {
	var res [2]derpload.Result
	ph, err := bench.StartHomederp(ctx, *homederpBin)
	if err != nil {
		return res, err
	}
	defer ph.Stop()
	pd, err := bench.StartDerper(ctx, *derperBin)
	if err != nil {
		return res, err
	}
	defer pd.Stop()
	targets := []*derpload.Process{ph, pd}
	idx := []int{0, 1}
	if derperFirst {
		idx = []int{1, 0}
	}
	res[0].Name, res[1].Name = "homederp", "derper"
	steps := []struct {
		what string
		do   func(t derpload.Target, r *derpload.Result) error
	}{
		{"idle clients", func(t derpload.Target, r *derpload.Result) (err error) {
			r.Memory, err = derpload.IdleMemory(ctx, t, o.IdleClients)
			return err
		}},
		{"paced traffic", func(t derpload.Target, r *derpload.Result) (err error) {
			r.Paced, err = derpload.RunTraffic(ctx, t, o.Pairs, o.Rate, 0, o.Size, o.Duration)
			return err
		}},
		{"windowed traffic", func(t derpload.Target, r *derpload.Result) (err error) {
			r.Max, err = derpload.RunTraffic(ctx, t, o.Pairs, 0, o.Window, o.Size, o.Duration)
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

func median(rs []derpload.Result, f func(derpload.Result) float64) float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, f(r))
	}
	return medianOf(v)
}

func medianOf(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func table(ours, up []derpload.Result) string {
	type row struct {
		name   string
		f      func(derpload.Result) float64
		format string
		ratio  bool
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	rows := []row{
		{fmt.Sprintf("paced: packets/s (%d pairs, %.0f pkt/s per client)", *pairs, *rate), func(r derpload.Result) float64 { return r.Paced.PacketsPerSec }, "%.0f", true},
		{"paced: Mbit/s", func(r derpload.Result) float64 { return r.Paced.Mbps }, "%.1f", true},
		{"paced: loss %", func(r derpload.Result) float64 { return 100 * r.Paced.Loss }, "%.3f", false},
		{"paced: p50 latency ms", func(r derpload.Result) float64 { return ms(r.Paced.P50) }, "%.2f", true},
		{"paced: p99 latency ms", func(r derpload.Result) float64 { return ms(r.Paced.P99) }, "%.2f", true},
		{"paced: server CPU s/GB", func(r derpload.Result) float64 { return r.Paced.CPUSecPerGB }, "%.2f", true},
		{fmt.Sprintf("max: packets/s (%d in flight per client)", *window), func(r derpload.Result) float64 { return r.Max.PacketsPerSec }, "%.0f", true},
		{"max: Mbit/s", func(r derpload.Result) float64 { return r.Max.Mbps }, "%.1f", true},
		{"max: loss %", func(r derpload.Result) float64 { return 100 * r.Max.Loss }, "%.3f", false},
		{"max: p50 latency ms", func(r derpload.Result) float64 { return ms(r.Max.P50) }, "%.2f", true},
		{"max: p99 latency ms", func(r derpload.Result) float64 { return ms(r.Max.P99) }, "%.2f", true},
		{"max: server CPU s/GB", func(r derpload.Result) float64 { return r.Max.CPUSecPerGB }, "%.2f", true},
		{"max: load generator CPU s", func(r derpload.Result) float64 { return r.Max.ClientCPU.Seconds() }, "%.1f", true},
		{fmt.Sprintf("RSS with %d idle clients, MiB", *idle), func(r derpload.Result) float64 { return float64(r.Memory.RSSKB) / 1024 }, "%.1f", true},
		{"RSS before the clients, MiB", func(r derpload.Result) float64 { return float64(r.Memory.RSSBeforeKB) / 1024 }, "%.1f", true},
		{"RSS per idle client, KiB", func(r derpload.Result) float64 { return r.Memory.PerClientKB }, "%.1f", true},
		{"STUN requests/s", func(r derpload.Result) float64 { return r.STUNRate }, "%.0f", true},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| metric (median of %d rounds) | homederp | derper | homederp/derper (median of per-round ratios) |\n|---|---:|---:|---:|\n", len(ours))
	for _, r := range rows {
		o, u := median(ours, r.f), median(up, r.f)
		ratio := "–"
		if r.ratio {
			var ratios []float64
			for i := range min(len(ours), len(up)) {
				if d := r.f(up[i]); d != 0 {
					ratios = append(ratios, r.f(ours[i])/d)
				}
			}
			if len(ratios) > 0 {
				ratio = fmt.Sprintf("%.3f", medianOf(ratios))
			}
		}
		fmt.Fprintf(&b, "| %s | "+r.format+" | "+r.format+" | %s |\n", r.name, o, u, ratio)
	}
	return b.String()
}
