package main

import (
	"io"
	"strings"
	"testing"
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
		{"build error", `# p
p.go:1: syntax error
{"Action":"fail","Package":"p"}`, false, []string{"p.go:1: syntax error"}},
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
