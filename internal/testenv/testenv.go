// Package testenv lets tests that need root, a network namespace or an
// outside program (BIND 9, Chromium, qemu, ...) say so in one way.
//
// Under a plain `go test ./...` on a laptop such a test skips with the
// reason. Under the README's test command (./test.sh, and so CI), which
// installs everything and sets HOMEDERP_TEST_ALL=1, a missing prerequisite
// fails the test instead: a skipped test never counts as passing there.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// All reports whether the full test run was requested, in which case every
// prerequisite must be present.
func All() bool { return os.Getenv("HOMEDERP_TEST_ALL") == "1" }

// Need stops t when ok is false: it fails under HOMEDERP_TEST_ALL=1 and
// skips otherwise. what says what is missing, e.g. "root".
func Need(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if All() {
		t.Fatalf("missing test prerequisite: %s (HOMEDERP_TEST_ALL=1 turns this skip into a failure; ./test.sh installs it)", what)
	}
	t.Skipf("skipping: needs %s (./test.sh installs it)", what)
}

// NeedRoot requires uid 0, e.g. for network namespaces.
func NeedRoot(t testing.TB) {
	t.Helper()
	Need(t, os.Geteuid() == 0, "root (for network namespaces)")
}

// NeedCommand requires the program name on $PATH (or the directories Debian
// installs daemons to) and returns its path.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if p := dir + "/" + name; isExecutable(p) {
				return p
			}
		}
	}
	Need(t, err == nil, "the program "+name)
	return path
}

// NeedLong skips (never fails) long-running tests under -short; the full
// run does not pass -short.
func NeedLong(t testing.TB) {
	t.Helper()
	if testing.Short() {
		if All() {
			t.Fatal("HOMEDERP_TEST_ALL=1 runs every test: do not combine it with -short")
		}
		t.Skip("skipping long test in -short mode")
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0111 != 0
}
