package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/board/profile"
	"github.com/homederp/homederp/internal/testenv"
)

const testPassword = "hd-board-test-password"

// testImageSize keeps test images small: /perm gets about 96 MiB.
const testImageSize = 1200 << 20

var (
	firstTimestamp  = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	secondTimestamp = time.Date(2026, 7, 2, 12, 0, 0, 0, time.UTC)
)

// testDir holds every build of this test binary; TestMain removes it.
var testDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "hd-board-image-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// testBuild is one built image, shared by the tests of this binary: each
// board is built once per timestamp.
type testBuild struct {
	res   *Result
	image string // the disk image, testImageSize bytes
	took  time.Duration
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*testBuild{}
	buildErr = map[string]error{}
)

func moduleDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// buildBoard builds the board's image (once per test binary and
// timestamp) and writes it as a disk image.
func buildBoard(t testing.TB, board string, ts time.Time) *testBuild {
	t.Helper()
	testenv.NeedLong(t)
	key := board + "@" + ts.Format(time.RFC3339)
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if b, ok := builds[key]; ok {
		return b
	}
	if err, ok := buildErr[key]; ok {
		t.Fatalf("building %s (earlier attempt): %v", key, err)
	}
	b, err := doBuild(t, board, ts, filepath.Join(testDir, strings.NewReplacer(":", "-", "@", "-").Replace(key)))
	if err != nil {
		buildErr[key] = err
		t.Fatalf("building %s: %v", key, err)
	}
	builds[key] = b
	return b
}

func doBuild(t testing.TB, board string, ts time.Time, dir string) (*testBuild, error) {
	p, err := profile.Lookup(board)
	if err != nil {
		return nil, err
	}
	mod := moduleDir(t)
	cfg, err := p.Load(filepath.Join(mod, "gokrazy-config"))
	if err != nil {
		return nil, err
	}
	if cfg.FirmwarePackageOrDefault() == "" {
		efi, _ := efiArch(cfg.GOARCH())
		loader := filepath.Join("/usr/lib/systemd/boot/efi", "systemd-boot"+efi+".efi")
		testenv.Need(t, fileExists(loader), loader+" (Debian's systemd-boot-efi for "+cfg.GOARCH()+")")
	}
	if err := os.MkdirAll(dir, 0755); err != nil {
		return nil, err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	res, err := Build(ctx, Options{
		Config:       cfg,
		Pi:           p.Pi,
		ConfigName:   "gokrazy-config/" + board + "/config.json",
		ModuleDir:    mod,
		WorkDir:      dir,
		Timestamp:    ts,
		HTTPPassword: testPassword,
		// A host whose systemd-boot-efi is not the pinned version
		// fetches the pinned one, as `board build` does.
		FetchEFI: true,
		Logf:     t.Logf,
	})
	if err != nil {
		return nil, err
	}
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := res.WriteDisk(f, testImageSize); err != nil {
		return nil, err
	}
	return &testBuild{res: res, image: img, took: time.Since(start)}, f.Close()
}

// outputDir is where test artifacts go: $HOMEDERP_TEST_OUTPUT (./test.sh
// sets it) or a temporary directory.
func outputDir(t testing.TB) string {
	if d := os.Getenv("HOMEDERP_TEST_OUTPUT"); d != "" {
		if err := os.MkdirAll(d, 0755); err == nil {
			return d
		}
	}
	return t.TempDir()
}
