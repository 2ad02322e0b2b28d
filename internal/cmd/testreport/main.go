// Command testreport reads `go test -json` on stdin, keeps the full output
// in a log file and prints a short report: one line per package, the
// output of every failed test, and every skipped test. It exits non-zero
// if anything failed or was skipped, because in the full test run
// (./test.sh) a skipped test is a missing prerequisite, not a pass.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json). Since Go 1.24
// the compiler's output arrives as "build-output" events keyed by
// ImportPath (e.g. "p [p.test]"), and the package's "fail" event names
// that build in FailedBuild; before, it was plain text on stderr.
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	Elapsed     float64
	ImportPath  string // build-output, build-fail
	FailedBuild string // fail of a package whose build failed
}

func main() {
	logPath := flag.String("log", "", "file to write the full test output to")
	flag.Parse()
	var logw io.Writer = io.Discard
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		logw = f
	}
	ok := report(os.Stdin, os.Stdout, logw)
	if *logPath != "" {
		fmt.Printf("full log: %s\n", *logPath)
	}
	if !ok {
		os.Exit(1)
	}
}

func report(r io.Reader, out, logw io.Writer) bool {
	outputs := map[string]*strings.Builder{} // by package + "\x00" + test
	builds := map[string]*strings.Builder{}  // compiler output by ImportPath
	var failed, skipped, pkgFailed, buildFailed []string
	reported := map[string]bool{} // failed builds printed with their package
	start := time.Now()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not JSON: build errors and the like.
			fmt.Fprintln(out, sc.Text())
			fmt.Fprintln(logw, sc.Text())
			continue
		}
		id := e.Package + "\x00" + e.Test
		switch e.Action {
		case "output":
			io.WriteString(logw, e.Output)
			appendCapped(outputs, id, e.Output)
		case "build-output":
			io.WriteString(logw, e.Output)
			appendCapped(builds, e.ImportPath, e.Output)
		case "build-fail":
			buildFailed = append(buildFailed, e.ImportPath)
		case "fail":
			if e.Test != "" {
				failed = append(failed, id)
			} else {
				pkgFailed = append(pkgFailed, e.Package)
				fmt.Fprintf(out, "FAIL  %s (%.1fs)\n", e.Package, e.Elapsed)
				if b := builds[e.FailedBuild]; e.FailedBuild != "" && b != nil {
					appendCapped(outputs, id, b.String())
					reported[e.FailedBuild] = true
				}
			}
		case "skip":
			if e.Test != "" {
				skipped = append(skipped, id)
			}
		case "pass":
			if e.Test == "" {
				fmt.Fprintf(out, "ok    %s (%.1fs)\n", e.Package, e.Elapsed)
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "reading test output: %v\n", err)
		return false
	}
	sort.Strings(failed)
	for _, id := range failed {
		pkg, test, _ := strings.Cut(id, "\x00")
		if strings.Contains(test, "/") && contains(failed, pkg+"\x00"+test[:strings.Index(test, "/")]) {
			continue // printed with its parent
		}
		fmt.Fprintf(out, "\n=== FAILED %s %s\n%s", pkg, test, outputs[id])
	}
	for _, pkg := range pkgFailed {
		if b := outputs[pkg+"\x00"]; b != nil && b.Len() > 0 {
			fmt.Fprintf(out, "\n=== package %s output\n%s", pkg, tail(b.String(), 100))
		}
	}
	// A build that failed outside any package's tests (go test's
	// own setup) is still a failure worth showing.
	for _, ip := range buildFailed {
		if !reported[ip] {
			fmt.Fprintf(out, "\n=== build of %s failed\n%s", ip, lastLines(builds[ip], 100))
		}
	}
	for _, id := range skipped {
		pkg, test, _ := strings.Cut(id, "\x00")
		fmt.Fprintf(out, "SKIPPED (counts as a failure) %s %s: %s", pkg, test, lastLines(outputs[id], 3))
	}
	fmt.Fprintf(out, "\n%d failed tests, %d failed packages, %d skipped tests, %v\n", len(failed), len(pkgFailed), len(skipped), time.Since(start).Round(time.Second))
	return len(failed) == 0 && len(pkgFailed) == 0 && len(skipped) == 0 && len(buildFailed) == 0
}

// appendCapped adds s to m[k], keeping at most 4 MiB per key.
func appendCapped(m map[string]*strings.Builder, k, s string) {
	b := m[k]
	if b == nil {
		b = &strings.Builder{}
		m[k] = b
	}
	if b.Len() < 4<<20 {
		b.WriteString(s)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func lastLines(b *strings.Builder, n int) string {
	if b == nil {
		return "\n"
	}
	return tail(b.String(), n)
}

func tail(s string, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "") + "\n"
}
