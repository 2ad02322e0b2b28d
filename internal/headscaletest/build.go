package headscaletest

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testenv"
)

// The headscale binary comes from the module in ./hsbuild, which pins
// headscale (and through it its own tailscale.com) with a committed
// go.sum: a module of its own, so the product module keeps the one
// tailscale.com version the relay and the box's tailscaled share. `go
// test ./...` and `go vet ./...` at the repository root do not descend
// into it.
//
// A cold build takes a couple of minutes on two cores, so the binary is
// kept in the user's cache directory under a name derived from the pins
// and the Go version, built once by whichever test binary gets there
// first (the others wait on a lock file), and reused by later runs.

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of the headscale binary, building it if no
// cached one matches the pins.
func Binary(t testing.TB) string {
	t.Helper()
	testenv.NeedCommand(t, "go")
	buildOnce.Do(func() { buildPath, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("headscaletest: %v", buildErr)
	}
	return buildPath
}

func build() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot find the hsbuild module")
	}
	mod := filepath.Join(filepath.Dir(file), "hsbuild")
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(mod, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	fmt.Fprintf(h, "%s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "homederp-test")
	if err := os.MkdirAll(dir, 0755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, fmt.Sprintf("headscale-%x", h.Sum(nil)[:8]))
	if isFile(bin) {
		return bin, nil
	}

	lock, err := os.OpenFile(bin+".lock", os.O_CREATE|os.O_RDWR, 0644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if isFile(bin) { // another test binary built it meanwhile
		return bin, nil
	}
	tmp := bin + ".tmp"
	start := time.Now()
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp, "github.com/juanfont/headscale/cmd/headscale")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building headscale in %s: %v\n%s", mod, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "headscaletest: built %s in %v\n", bin, time.Since(start).Round(time.Second))
	return bin, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
