package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/homederp/homederp/board/flash"
	"github.com/homederp/homederp/board/profile"
)

// BenchmarkBox takes every figure of the box in one run, the way
// scripts/bench-box.sh runs it:
//
//	go test -run '^$' -bench '^BenchmarkBox$' -benchtime 1x -timeout 40m ./board/image
//
// the written bytes of each board's image and what board flash writes to
// a card, runBox with 100 DERP clients, then runArm64 (a board without a
// real-time clock after a power cut). It prints the figures as a table, reports the headline ones
// as benchmark metrics and writes them all, each with the host's load
// average, to box-bench.json in the test output directory, merging the
// DDNS figures of scripts/bench-ddns.sh if $HOMEDERP_DDNS_BENCH_JSON names
// them.
func BenchmarkBox(b *testing.B) {
	if b.N > 1 {
		b.Fatalf("BenchmarkBox boots a VM: run it once, with -benchtime 1x")
	}
	f := &figures{}
	for _, p := range profile.Profiles {
		tb := buildBoard(b, p.Name, firstTimestamp)
		f.mebibytes(p.Name+": written bytes of the image", allocated(b, tb.image), fmt.Sprintf("≤ %d MiB", maxWritten>>20), p.Name+"-image-MiB")
		f.mebibytes(p.Name+":   of which boot file system", tb.res.Boot.Size(), "", "")
		f.mebibytes(p.Name+":   of which root file system", tb.res.RootSize, "", "")
	}
	f.flashCard(b, buildBoard(b, "amd64", firstTimestamp), 32e9)
	f.list = append(f.list, runBox(b, boxRun{clients: 100}).list...)
	f.list = append(f.list, runArm64(b).list...)

	report := benchReport{Date: time.Now().UTC().Format(time.RFC3339), Machine: hostMachine(), Figures: f.list}
	if p := os.Getenv("HOMEDERP_DDNS_BENCH_JSON"); p != "" {
		raw, err := os.ReadFile(p)
		if err != nil {
			b.Fatalf("DDNS figures: %v", err)
		}
		if err := json.Unmarshal(raw, &report.DDNS); err != nil {
			b.Fatalf("DDNS figures in %s: %v", p, err)
		}
	}
	out := filepath.Join(outputDir(b), "box-bench.json")
	if err := writeJSON(out, report); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("\nbox figures, %s, %s:\n\n%s\nwritten to %s\n", report.Date, report.Machine, f.table(), out)
	b.ReportMetric(0, "ns/op")
	for _, x := range f.list {
		if x.Metric != "" {
			b.ReportMetric(x.Value, x.Metric)
		}
	}
}

// flashCard records what `board flash` writes to a card of size bytes: it
// copies the image as board flash does (flash.CopyImage) onto a sparse
// file of that size, whose allocated blocks are what was written.
func (f *figures) flashCard(t testing.TB, tb *testBuild, size int64) {
	t.Helper()
	src, err := os.Open(tb.image)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	card := filepath.Join(t.TempDir(), "card.img")
	dst, err := os.Create(card)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(card)
	defer dst.Close()
	if err := dst.Truncate(size); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := flash.CopyImage(dst, size, src); err != nil {
		t.Fatalf("flash.CopyImage: %v", err)
	}
	took := time.Since(start)
	f.mebibytes(fmt.Sprintf("%s: board flash to a %.0f GB card writes", tb.res.GOARCH, float64(size)/1e9), allocated(t, card), "", "flash-32GB-MiB")
	f.seconds(fmt.Sprintf("%s:   in (to a file on this machine's disk)", tb.res.GOARCH), took, "", "")
}
