package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homederp/homederp/internal/testenv"
)

func TestReport(t *testing.T) {
	for _, tt := range []struct {
		name   string
		events string
		wantOK bool
		want   []string
	}{
		{"all pass", `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"hi\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Elapsed":1.5}`, true, []string{"ok    p (1.5s)", "0 failed tests"}},
		{"a skip fails the run", `{"Action":"output","Package":"p","Test":"TestB","Output":"skipping: needs root\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"pass","Package":"p"}`, false, []string{"SKIPPED (counts as a failure) p TestB: skipping: needs root"}},
		{"a failure prints its output", `{"Action":"output","Package":"p","Test":"TestC","Output":"got 1, want 2\n"}
{"Action":"fail","Package":"p","Test":"TestC"}
{"Action":"fail","Package":"p"}`, false, []string{"=== FAILED p TestC\ngot 1, want 2", "FAIL  p"}},
		{"a build failure outside a package", `{"ImportPath":"q [q.test]","Action":"build-output","Output":"q.go:3: undefined: x\n"}
{"ImportPath":"q [q.test]","Action":"build-fail"}`, false, []string{"=== build of q [q.test] failed\nq.go:3: undefined: x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			ok := report(strings.NewReader(tt.events), &out, io.Discard)
			if ok != tt.wantOK {
				t.Errorf("report: got ok=%v, want %v\n%s", ok, tt.wantOK, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("report output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestReportRealGoTest feeds the report what this Go toolchain's
// `go test -json` prints for a module with a package that does not
// compile and one that passes: the compiler's message must reach both the
// report and the log.
func TestReportRealGoTest(t *testing.T) {
	goBin := testenv.NeedCommand(t, "go")
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":          "module example.com/broken\n\ngo 1.22\n",
		"b.go":            "package broken\n\nfunc F() int { return \"not an int\" }\n",
		"b_test.go":       "package broken\n\nimport \"testing\"\n\nfunc TestF(t *testing.T) { F() }\n",
		"fine/ok_test.go": "package fine\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goBin, "test", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	events, err := cmd.Output()
	if err == nil {
		t.Fatalf("go test of a package that does not compile succeeded:\n%s\n%s", events, stderr.Bytes())
	}

	var out, logw strings.Builder
	ok := report(bytes.NewReader(events), &out, &logw)
	if ok {
		t.Errorf("report: got ok, want a failure:\n%s", out.String())
	}
	const msg = `cannot use "not an int"`
	for _, w := range []string{"FAIL  example.com/broken", msg, "ok    example.com/broken/fine"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("report lacks %q:\n%s\n(go test -json printed:\n%s)", w, out.String(), events)
		}
	}
	if !strings.Contains(logw.String(), msg) {
		t.Errorf("log lacks the compiler's message %q:\n%s", msg, logw.String())
	}
}
