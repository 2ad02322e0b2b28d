package perm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testenv"
)

var (
	testTime = time.Date(2026, 7, 1, 12, 34, 56, 0, time.UTC)
	testUUID = [16]byte{0x60, 0xc2, 0x4c, 0xc1, 0xf3, 0xf9, 0x42, 0x7a, 0x81, 0x99, 0x4f, 0x9f, 0x2c, 0xab, 0, 4}
)

// format formats size bytes at offset off of a new file and returns the
// file system's bytes.
func format(t *testing.T, off, size int64) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(off + size + 4096); err != nil {
		t.Fatal(err)
	}
	// Something to not overwrite on either side.
	f.WriteAt(bytes.Repeat([]byte{0xAA}, 4096), off-4096)
	f.WriteAt(bytes.Repeat([]byte{0xBB}, 4096), off+size)
	if err := Format(f, off, size, testUUID, testTime); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size+8192)
	if _, err := f.ReadAt(b, off-4096); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if !bytes.Equal(b[:4096], bytes.Repeat([]byte{0xAA}, 4096)) || !bytes.Equal(b[size+4096:], bytes.Repeat([]byte{0xBB}, 4096)) {
		t.Errorf("Format wrote outside [off, off+size)")
	}
	return b[4096 : size+4096]
}

func TestE2fsckClean(t *testing.T) {
	e2fsck := testenv.NeedCommand(t, "e2fsck")
	dumpe2fs := testenv.NeedCommand(t, "dumpe2fs")
	for _, size := range []int64{64 << 20, 900 << 20} {
		b := format(t, 1<<20, size)
		p := filepath.Join(t.TempDir(), "perm.ext4")
		if err := os.WriteFile(p, b, 0644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(e2fsck, "-fn", p).CombinedOutput()
		if err != nil {
			t.Errorf("e2fsck -fn (%d MiB): %v\n%s", size>>20, err, out)
		}
		cmd := exec.Command(dumpe2fs, "-h", p)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		out, err = cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dumpe2fs: %v\n%s", err, out)
		}
		for _, want := range []string{
			"Filesystem UUID:          60c24cc1-f3f9-427a-8199-4f9f2cab0004",
			"Filesystem volume name:   perm",
			"Filesystem created:       Wed Jul  1 12:34:56 2026",
			"Block size:               4096",
			"has_journal",
			"metadata_csum",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("dumpe2fs -h (%d MiB): want %q in:\n%s", size>>20, want, out)
			}
		}
	}
}

// TestReproducible formats twice, a second apart: the bytes must not
// depend on the wall clock or on randomness. 300 MiB has three block
// groups, so backup superblocks too.
func TestReproducible(t *testing.T) {
	a := format(t, 4096, 300<<20)
	time.Sleep(1100 * time.Millisecond) // the clock is what is being tested
	b := format(t, 4096, 300<<20)
	if !bytes.Equal(a, b) {
		n, first := 0, -1
		for i := range a {
			if a[i] != b[i] {
				if first < 0 {
					first = i
				}
				n++
			}
		}
		t.Errorf("two formats differ in %d bytes, first at %#x", n, first)
	}
}

// TestLargeDevice formats a /perm the size of a 16 GB SD card (a sparse
// file): many block groups, backup superblocks to normalize.
func TestLargeDevice(t *testing.T) {
	e2fsck := testenv.NeedCommand(t, "e2fsck")
	testenv.NeedLong(t)
	p := filepath.Join(t.TempDir(), "perm.ext4")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 15 << 30
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := Format(f, 0, size, testUUID, testTime); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(e2fsck, "-fn", p).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn (15 GiB): %v\n%s", err, out)
	}
}

// TestFormatZeroed formats a new sparse file both ways: the bytes are the
// same, and FormatZeroed leaves the zeros unwritten.
func TestFormatZeroed(t *testing.T) {
	const size = 900 << 20
	dir := t.TempDir()
	var got [2][]byte
	var used [2]int64
	for i, fn := range []func(*os.File, int64, int64, [16]byte, time.Time) error{Format, FormatZeroed} {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		if err := fn(f, 0, size, testUUID, testTime); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		got[i] = make([]byte, size)
		if _, err := f.ReadAt(got[i], 0); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		used[i] = st.Blocks * 512
	}
	if !bytes.Equal(got[0], got[1]) {
		n, first, last := 0, -1, -1
		for i := range got[0] {
			if got[0][i] != got[1][i] {
				if first < 0 {
					first = i
				}
				last = i
				n++
			}
		}
		t.Fatalf("FormatZeroed wrote other bytes than Format: %d differ, from %#x to %#x", n, first, last)
	}
	t.Logf("900 MiB /perm: Format writes %.1f MiB, FormatZeroed %.1f MiB", float64(used[0])/(1<<20), float64(used[1])/(1<<20))
	if used[1] > 2<<20 || used[1] >= used[0] {
		t.Errorf("FormatZeroed allocated %d bytes (Format %d), want at most 2 MiB", used[1], used[0])
	}
}
