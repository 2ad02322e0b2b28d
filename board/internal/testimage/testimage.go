// Package testimage makes small gokrazy-shaped disk images and loop
// devices for tests of flashing, without compiling any Go programs.
package testimage

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/fat16"
	"github.com/homederp/homederp/board/squashfs"
	"github.com/homederp/homederp/internal/testenv"
)

// Write writes a disk image of size bytes to p with the partition tables
// of hostname/goarch, a boot FAT holding cmdline.txt, and a root squashfs
// holding /etc/hostname.
func Write(t testing.TB, p string, size int64, hostname, goarch string) {
	t.Helper()
	l, err := disk.NewLayout(size)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(l.Size()); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteTables(f, disk.NewID(hostname, goarch)); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	boot := fat16.New()
	if err := boot.AddBytes("cmdline.txt", []byte("console=tty1 root=PARTUUID="+strings.ToLower(disk.PartGUID(hostname, 1).String())+"/PARTNROFF=1"+strings.Repeat(" ", 64))); err != nil {
		t.Fatal(err)
	}
	im, err := boot.Build(fat16.Options{ModTime: ts, Label: "HOMEDERP"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.WriteTo(io.NewOffsetWriter(f, l.Part(disk.Boot).Offset())); err != nil {
		t.Fatal(err)
	}
	root := squashfs.New()
	if err := root.AddBytes("/etc/hostname", 0644, []byte(hostname)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(l.Part(disk.RootA).Offset(), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := root.WriteTo(f, squashfs.Options{ModTime: ts}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Loop attaches a new sparse file of size bytes as a loop device and
// returns its path, e.g. /dev/loop3. It is detached when the test ends.
// Needs root and losetup.
func Loop(t testing.TB, size int64) string {
	t.Helper()
	backing := filepath.Join(t.TempDir(), "hd-board-loop.img")
	f, err := os.Create(backing)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return LoopFile(t, backing)
}

// LoopFile attaches the file p as a loop device, detached when the test
// ends.
func LoopFile(t testing.TB, p string) string {
	t.Helper()
	testenv.NeedRoot(t)
	losetup := testenv.NeedCommand(t, "losetup")
	out, err := exec.Command(losetup, "--find", "--show", p).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command(losetup, "-d", dev).CombinedOutput(); err != nil {
			t.Logf("losetup -d %s: %v\n%s", dev, err, out)
		}
	})
	return dev
}

// Extract copies n bytes at off of the file or device src into a new
// sparse file and returns its path.
func Extract(t testing.TB, src string, off, n int64) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p := filepath.Join(t.TempDir(), "extract.img")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	for done := int64(0); done < n; {
		m := min(int64(len(buf)), n-done)
		if _, err := in.ReadAt(buf[:m], off+done); err != nil {
			t.Fatal(err)
		}
		if !zero(buf[:m]) {
			if _, err := out.WriteAt(buf[:m], done); err != nil {
				t.Fatal(err)
			}
		}
		done += m
	}
	if err := out.Truncate(n); err != nil {
		t.Fatal(err)
	}
	return p
}

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
