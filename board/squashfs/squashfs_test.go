package squashfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testenv"
)

var testTime = time.Date(2026, 7, 1, 12, 34, 56, 0, time.UTC)

type entry struct {
	mode    iofs.FileMode
	content []byte
	target  string
}

// rootTree is shaped like a gokrazy root: empty directories, symlinks to
// paths that do not exist at build time, binaries spanning many blocks,
// incompressible data, a file of exactly one block, an empty file, and a
// directory with more entries than one directory header holds.
func rootTree() map[string]entry {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 3*blockSize+17)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	t := map[string]entry{
		"/bin":             {mode: iofs.ModeDir | 0755},
		"/dev":             {mode: iofs.ModeDir | 0755},
		"/perm":            {mode: iofs.ModeDir | 0755},
		"/var":             {mode: iofs.ModeSymlink | 0777, target: "/perm/var"},
		"/etc/resolv.conf": {mode: iofs.ModeSymlink | 0777, target: "/tmp/resolv.conf"},
		"/etc/hostname":    {mode: 0644, content: []byte("homederp")},
		"/etc/gokr-pw.txt": {mode: 0400, content: []byte("secret")},
		"/etc/empty":       {mode: 0444},
		"/gokrazy/init":    {mode: 0755, content: bytes.Repeat([]byte("init binary "), 50000)},
		"/user/random":     {mode: 0755, content: random},
		"/user/oneblock":   {mode: 0644, content: bytes.Repeat([]byte{'x'}, blockSize)},
	}
	for i := 0; i < 600; i++ {
		t[fmt.Sprintf("/lib/modules/6.1/kernel/m%04d.ko", i)] = entry{mode: 0644, content: []byte(fmt.Sprintf("module %d", i))}
	}
	return t
}

func build(t *testing.T, tree map[string]entry) string {
	t.Helper()
	fs := New()
	for p, e := range tree {
		var err error
		switch {
		case e.mode.IsDir():
			err = fs.Mkdir(p, e.mode.Perm())
		case e.mode&iofs.ModeSymlink != 0:
			err = fs.Symlink(p, e.target)
		default:
			err = fs.AddBytes(p, e.mode, e.content)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "root.squashfs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	n, err := fs.WriteTo(f, Options{ModTime: testTime})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n%4096 != 0 {
		t.Errorf("size %d is not a multiple of 4 KiB", n)
	}
	return p
}

// TestUnsquashfsListing checks modes, owners, symlink targets and sizes as
// squashfs-tools reads them.
func TestUnsquashfsListing(t *testing.T) {
	unsquashfs := testenv.NeedCommand(t, "unsquashfs")
	tree := rootTree()
	img := build(t, tree)
	out, err := exec.Command(unsquashfs, "-n", "-lls", "-d", "", img).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -lls: %v\n%s", err, out)
	}
	listing := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.Contains(f[1], "/") {
			continue
		}
		// e.g. "lrwxrwxrwx root/root 9 2026-07-01 12:34 /var -> /perm/var"
		name := strings.Join(f[5:], " ")
		listing[name] = f[0] + " " + f[1] + " " + f[2]
	}
	want := map[string]string{
		"":                                     "drwxr-xr-x root/root",
		"/var -> /perm/var":                    "lrwxrwxrwx root/root 9",
		"/etc/resolv.conf -> /tmp/resolv.conf": "lrwxrwxrwx root/root 16",
		"/etc/hostname":                        "-rw-r--r-- root/root 8",
		"/etc/gokr-pw.txt":                     "-r-------- root/root 6",
		"/etc/empty":                           "-r--r--r-- root/root 0",
		"/gokrazy/init":                        fmt.Sprintf("-rwxr-xr-x root/root %d", 12*50000),
		"/user/random":                         fmt.Sprintf("-rwxr-xr-x root/root %d", 3*blockSize+17),
		"/dev":                                 "drwxr-xr-x root/root",
	}
	for name, w := range want {
		got, ok := listing[name]
		if !ok {
			t.Errorf("unsquashfs -lls: %q missing", name)
			continue
		}
		if !strings.HasPrefix(got, w) {
			t.Errorf("unsquashfs -lls %q: got %q, want prefix %q", name, got, w)
		}
	}
	if !strings.Contains(string(out), "2026-07-01") {
		t.Errorf("timestamps: want 2026-07-01 in the listing:\n%.500s", out)
	}
}

// TestUnsquashfsExtract extracts the image and compares every file.
func TestUnsquashfsExtract(t *testing.T) {
	unsquashfs := testenv.NeedCommand(t, "unsquashfs")
	tree := rootTree()
	img := build(t, tree)
	dest := filepath.Join(t.TempDir(), "x")
	out, err := exec.Command(unsquashfs, "-n", "-d", dest, img).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs: %v\n%s", err, out)
	}
	for p, e := range tree {
		fp := filepath.Join(dest, p)
		fi, err := os.Lstat(fp)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		switch {
		case e.mode&iofs.ModeSymlink != 0:
			got, err := os.Readlink(fp)
			if err != nil || got != e.target {
				t.Errorf("readlink %s: got %q, %v; want %q", p, got, err, e.target)
			}
		case e.mode.IsDir():
			if !fi.IsDir() {
				t.Errorf("%s: not a directory", p)
			}
		default:
			got, err := os.ReadFile(fp)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if !bytes.Equal(got, e.content) {
				t.Errorf("%s: content differs (%d bytes, want %d)", p, len(got), len(e.content))
			}
			if fi.Mode().Perm() != e.mode.Perm() {
				t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), e.mode.Perm())
			}
		}
	}
	entries, err := os.ReadDir(filepath.Join(dest, "lib/modules/6.1/kernel"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(entries), 600; got != want {
		t.Errorf("entries in a 600-entry directory: got %d, want %d", got, want)
	}
}

func TestSuperblock(t *testing.T) {
	img := build(t, rootTree())
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	le := func(off, n int) uint64 {
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[off+i])
		}
		return v
	}
	for _, tc := range []struct {
		field     string
		got, want uint64
	}{
		{"magic", le(0, 4), magic},
		{"block size", le(12, 4), blockSize},
		{"compression (zlib)", le(20, 2), compZlib},
		{"version major", le(28, 2), 4},
		{"ids", le(26, 2), 1},
		{"fragments", le(16, 4), 0},
		{"mtime", le(8, 4), uint64(testTime.Unix())},
	} {
		if tc.got != tc.want {
			t.Errorf("superblock %s: got %#x, want %#x", tc.field, tc.got, tc.want)
		}
	}
}

func TestReproducible(t *testing.T) {
	hash := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x", sha256.Sum256(b))
	}
	a, b := build(t, rootTree()), build(t, rootTree())
	if ha, hb := hash(a), hash(b); ha != hb {
		t.Errorf("two builds of the same tree differ: %s vs %s", ha, hb)
	}
}

func TestErrors(t *testing.T) {
	fs := New()
	if err := fs.AddBytes("/etc/hostname", 0644, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"duplicate", fs.AddBytes("/etc/hostname", 0644, nil)},
		{"file as directory", fs.AddBytes("/etc/hostname/x", 0644, nil)},
		{"dot-dot path", fs.AddBytes("/etc/../x", 0644, nil)},
		{"empty symlink target", fs.Symlink("/x", "")},
	} {
		if tc.err == nil {
			t.Errorf("%s: got nil error, want one", tc.name)
		}
	}
}

// BenchmarkWrite measures writing a root of Go binaries (this test
// binary, several times over), the bulk of an image's root file system.
func BenchmarkWrite(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(exe)
	if err != nil {
		b.Fatal(err)
	}
	fs := New()
	for i := 0; i < 4; i++ {
		if err := fs.AddHostFile(fmt.Sprintf("/user/prog%d", i), exe, 0755); err != nil {
			b.Fatal(err)
		}
	}
	out := filepath.Join(b.TempDir(), "root.squashfs")
	b.SetBytes(4 * fi.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		n, err := fs.WriteTo(f, Options{ModTime: testTime})
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
		b.ReportMetric(float64(n)/float64(4*fi.Size()), "ratio")
	}
}
