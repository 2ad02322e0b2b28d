package fat16

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/board/internal/gokrazyfat"
	"github.com/homederp/homederp/board/internal/toolcheck"
	"github.com/homederp/homederp/internal/testenv"
)

var testTime = time.Date(2026, 7, 1, 12, 34, 56, 0, time.UTC)

// bootTree is shaped like a gokrazy boot partition: short and long names,
// nested directories, an empty file, a file of exactly one cluster and a
// directory with enough long names to span several clusters.
func bootTree(t *testing.T) (*FS, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{
		"cmdline.txt":                 []byte("console=tty1 root=PARTUUID=60c24cc1-f3f9-427a-8199-4f9f2cab0001/PARTNROFF=1 ro" + strings.Repeat(" ", 64)),
		"vmlinuz":                     bytes.Repeat([]byte("kernel!"), 100000),
		"config.txt":                  []byte("enable_uart=1\n"),
		"EFI/BOOT/BOOTX64.EFI":        bytes.Repeat([]byte{0xEF}, 5000),
		"loader/entries/gokrazy.conf": []byte("title gokrazy\nlinux /vmlinuz\noptions console=tty1" + strings.Repeat(" ", 64)),
		"bcm2711-rpi-4-b.dtb":         bytes.Repeat([]byte{1, 2, 3}, 20000),
		"empty":                       nil,
		"onecluster.bin":              bytes.Repeat([]byte{7}, clusterSize),
		"MixedCase.Dat":               []byte("mixed"),
	}
	for i := 0; i < 120; i++ {
		files[fmt.Sprintf("overlays/vc4-kms-v3d-pi%d-overlay.dtbo", i)] = []byte(fmt.Sprintf("overlay %d", i))
	}
	fs := New()
	for p, b := range files {
		if err := fs.AddBytes(p, b); err != nil {
			t.Fatal(err)
		}
	}
	return fs, files
}

func writeImage(t *testing.T, fs *FS) (string, *Image) {
	t.Helper()
	im, err := fs.Build(Options{VolumeID: 0x4f9f2cab, Label: "HOMEDERP", ModTime: testTime, HiddenSectors: 8192})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "boot.fat")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, im
}

func TestShortNames(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  []string // short names, in the order of names
		lfn   []bool
	}{
		{[]string{"cmdline.txt"}, []string{"CMDLINE TXT"}, []bool{false}},
		{[]string{"VMLINUZ"}, []string{"VMLINUZ    "}, []bool{false}},
		{[]string{"loader"}, []string{"loader     "}, []bool{false}},
		{[]string{"gokrazy.conf"}, []string{"GOKRAZ~1CON"}, []bool{true}},
		{[]string{"MixedCase.Dat"}, []string{"MIXEDC~1DAT"}, []bool{true}},
		{[]string{"a b.txt"}, []string{"AB~1    TXT"}, []bool{true}},
		{
			[]string{"overlay-one.dtbo", "overlay-two.dtbo"},
			[]string{"OVERLA~1DTB", "OVERLA~2DTB"},
			[]bool{true, true},
		},
	} {
		dir := &node{dir: true, children: map[string]*node{}}
		var nodes []*node
		for _, n := range tc.names {
			c := &node{name: n}
			dir.children[strings.ToUpper(n)] = c
			nodes = append(nodes, c)
		}
		if err := assignNames(dir); err != nil {
			t.Fatal(err)
		}
		for i, c := range nodes {
			if got := string(c.short[:]); got != tc.want[i] {
				t.Errorf("short name of %q: got %q, want %q", c.name, got, tc.want[i])
			}
			if c.lfn != tc.lfn[i] {
				t.Errorf("long name entries for %q: got %v, want %v", c.name, c.lfn, tc.lfn[i])
			}
		}
	}
}

func TestInvalidNames(t *testing.T) {
	for _, p := range []string{"a:b", "x/../y", "trailing.", "", "star*"} {
		if err := New().AddBytes(p, nil); err == nil {
			t.Errorf("AddBytes(%q): got nil error, want one", p)
		}
	}
	fs := New()
	if err := fs.AddBytes("README", nil); err != nil {
		t.Fatal(err)
	}
	if err := fs.AddBytes("readme", nil); err == nil {
		t.Errorf("AddBytes(readme) next to README: got nil error, want a collision")
	}
}

func TestGeometry(t *testing.T) {
	fs, _ := bootTree(t)
	p, im := writeImage(t, fs)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int64(len(b)), im.Size(); got != want {
		t.Fatalf("image size: got %d, want %d", got, want)
	}
	le16 := func(off int) int { return int(b[off]) | int(b[off+1])<<8 }
	for _, tc := range []struct {
		field     string
		got, want int
	}{
		{"bytes per sector", le16(11), 512},
		{"sectors per cluster", int(b[13]), 4},
		{"reserved sectors", le16(14), 4},
		{"number of FATs", int(b[16]), 1},
		{"media", int(b[21]), 0xF8},
		{"boot signature", le16(510), 0xAA55},
		{"FAT16 minimum clusters", im.clusterCount, minClusters},
		{"data area alignment", int(im.dataStart % clusterSize), 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.field, tc.got, tc.want)
		}
	}
	if got := string(b[54:62]); got != "FAT16   " {
		t.Errorf("file system type: got %q", got)
	}
	// Every file's extent holds exactly its content.
	_, files := bootTree(t)
	for name, content := range files {
		off, n, ok := im.Extent(name)
		if !ok {
			t.Errorf("Extent(%q): not found", name)
			continue
		}
		if !bytes.Equal(b[off:off+n], content) {
			t.Errorf("Extent(%q) = %d+%d does not hold the file", name, off, n)
		}
	}
}

func TestReproducible(t *testing.T) {
	fs1, _ := bootTree(t)
	fs2, _ := bootTree(t) // map iteration adds files in another order
	p1, _ := writeImage(t, fs1)
	p2, _ := writeImage(t, fs2)
	if got, want := fileHash(t, p1), fileHash(t, p2); got != want {
		t.Errorf("two builds of the same tree differ: %s vs %s", got, want)
	}
}

func fileHash(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// TestFsck checks the image with dosfstools' fsck.fat in read-only mode.
func TestFsck(t *testing.T) {
	fsck := testenv.NeedCommand(t, "fsck.fat")
	fs, _ := bootTree(t)
	p, _ := writeImage(t, fs)
	out := toolcheck.Run(t, fsck, []string{"-n", "-v", p}, "1 FATs, 16 bit entries", "4 reserved sectors")
	t.Logf("fsck.fat:\n%s", out)
}

// TestMtools reads every file back with mtools, which resolves long names
// the way firmware does.
func TestMtools(t *testing.T) {
	mtype := testenv.NeedCommand(t, "mtype")
	mdir := testenv.NeedCommand(t, "mdir")
	fs, files := bootTree(t)
	p, _ := writeImage(t, fs)
	env := append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	for name, want := range files {
		cmd := exec.Command(mtype, "-i", p, "::/"+name)
		cmd.Env = env
		got, err := cmd.Output()
		if err != nil {
			t.Errorf("mtype %s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("mtype %s: got %d bytes, want %d", name, len(got), len(want))
		}
	}
	cmd := exec.Command(mdir, "-i", p, "::/loader/entries")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "GOKRAZ~1 CON") || !strings.Contains(string(out), "gokrazy.conf") {
		t.Errorf("mdir ::/loader/entries: want short name GOKRAZ~1.CON and long name gokrazy.conf, got:\n%s", out)
	}
	cmd = exec.Command(mdir, "-i", p, "::/")
	cmd.Env = env
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Volume in drive : is HOMEDERP") {
		t.Errorf("mdir ::/: want volume label HOMEDERP, got:\n%s", out)
	}
}

// TestGokrazyReader parses the image with gokrazy's own FAT reader, the
// code /update/switch runs on the device.
func TestGokrazyReader(t *testing.T) {
	fs, files := bootTree(t)
	p, im := writeImage(t, fs)
	paths := []string{"/cmdline.txt", "/loader/entries/gokrazy.conf", "/vmlinuz", "/config.txt"}
	got := GokrazyReaderExtents(t, p, paths)
	for _, pth := range paths {
		off, n, _ := im.Extent(pth)
		if got[pth] != [2]int64{off, n} {
			t.Errorf("gokrazy fat.Reader.Extents(%q): got %v, want [%d %d]", pth, got[pth], off, n)
		}
		if n != int64(len(files[strings.TrimPrefix(pth, "/")])) {
			t.Errorf("%s: length %d, want %d", pth, n, len(files[strings.TrimPrefix(pth, "/")]))
		}
	}
}

// GokrazyReaderExtents runs gokrazy's reader on the file system image p.
func GokrazyReaderExtents(t *testing.T, p string, paths []string) map[string][2]int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gokrazyfat.Extents(p, 0, fi.Size(), paths)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
