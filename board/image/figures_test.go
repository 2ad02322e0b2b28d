package image

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// figure is one measured number of the box, with the host's load
// average when it was taken: this machine is shared, and a figure taken
// under load is slower than the box.
type figure struct {
	Name   string     `json:"name"` // e.g. "power on → STUN answers"
	Value  float64    `json:"value"`
	Unit   string     `json:"unit"`             // "s", "MiB", "%", "clients"
	Target string     `json:"target,omitempty"` // e.g. "≤ 15 s", for the figures the issue sets one
	Load   [3]float64 `json:"load"`             // /proc/loadavg: 1, 5 and 15 minutes
	// Metric is the name the benchmark reports it under, e.g.
	// "boot-to-stun-s"; "" for a detail that is only printed.
	Metric string `json:"metric,omitempty"`
}

// figures collects a run's figures in the order they were taken.
type figures struct {
	list []figure
}

func (f *figures) add(name string, value float64, unit, target, metric string) {
	f.list = append(f.list, figure{Name: name, Value: value, Unit: unit, Target: target, Load: loadAverage(), Metric: metric})
}

func (f *figures) seconds(name string, d time.Duration, target, metric string) {
	f.add(name, d.Seconds(), "s", target, metric)
}

func (f *figures) mebibytes(name string, n int64, target, metric string) {
	f.add(name, mib(n), "MiB", target, metric)
}

// table renders the figures for a terminal and for BENCHMARKS.md.
func (f *figures) table() string {
	var b strings.Builder
	b.WriteString("| figure | value | target | load average (1 min) |\n|---|---:|---|---:|\n")
	for _, x := range f.list {
		v := fmt.Sprintf("%.1f %s", x.Value, x.Unit)
		if x.Unit == "clients" {
			v = fmt.Sprintf("%.0f", x.Value)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f |\n", x.Name, v, x.Target, x.Load[0])
	}
	return b.String()
}

// benchReport is test-output/box-bench.json.
type benchReport struct {
	Date    string   `json:"date"`
	Machine string   `json:"machine"`
	Figures []figure `json:"figures"`
	DDNS    any      `json:"ddns,omitempty"` // scripts/bench-ddns.sh's test-output/ddns-bench.json, as it is
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0644)
}

// loadAverage reads /proc/loadavg.
func loadAverage() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err == nil {
		fmt.Sscan(string(b), &l[0], &l[1], &l[2])
	}
	return l
}

// hostMachine describes the host for the report, e.g. "2 CPUs (Intel Xeon
// ...), 23 GiB".
func hostMachine() string {
	cpus, model := 0, ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "processor":
				cpus++
			case "model name":
				model = strings.TrimSpace(v)
			}
		}
	}
	var memKB int64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		fmt.Sscanf(string(b), "MemTotal: %d kB", &memKB)
	}
	return fmt.Sprintf("%d CPUs (%s), %.0f GiB RAM", cpus, model, float64(memKB)/(1<<20))
}
