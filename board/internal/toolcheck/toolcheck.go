// Package toolcheck runs the outside programs that tests use to check
// what the board packages write (fsck.fat, e2fsck, debugfs, unsquashfs,
// fdisk) and checks what they print.
//
// It is its own package, not part of testimage, because the tests of
// board/fat16 use it and testimage imports fat16.
package toolcheck

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Run runs the program name (a path or a name on $PATH) with args and
// returns its combined output. If the program fails, t stops with that
// output; if the output lacks any of want, t fails (and goes on).
func Run(t testing.TB, name string, args []string, want ...string) []byte {
	t.Helper()
	cmdline := strings.Join(append([]string{filepath.Base(name)}, args...), " ")
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("%s: output lacks %q:\n%s", cmdline, w, out)
		}
	}
	return out
}
