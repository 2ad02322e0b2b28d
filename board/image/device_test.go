package image

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/internal/testimage"
	"github.com/homederp/homederp/internal/testenv"
)

// TestWriteDiskToDevice writes a built image to a block device (a loop
// device standing in for an SD card), as `board flash -board` does: /perm
// spans the device and root B's old content is cleared.
func TestWriteDiskToDevice(t *testing.T) {
	e2fsck := testenv.NeedCommand(t, "e2fsck")
	b := buildBoard(t, "amd64", firstTimestamp)
	const size = 1500 << 20
	dev := testimage.Loop(t, size)
	f, err := os.OpenFile(dev, os.O_RDWR|os.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, _ := disk.NewLayout(size)
	stale := bytes.Repeat([]byte("old card"), 1<<17) // 1 MiB
	if _, err := f.WriteAt(stale, l.Part(disk.RootB).Offset()); err != nil {
		t.Fatal(err)
	}
	got, err := b.res.WriteDisk(f, size)
	if err != nil {
		t.Fatal(err)
	}
	if got.Part(disk.Perm) != l.Part(disk.Perm) {
		t.Errorf("/perm: got %+v, want %+v (to the end of the device)", got.Part(disk.Perm), l.Part(disk.Perm))
	}
	head := make([]byte, 1<<20)
	if _, err := f.ReadAt(head, l.Part(disk.RootB).Offset()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(head, make([]byte, 1<<20)) {
		t.Errorf("root B still holds old data")
	}
	rootA := testimage.Extract(t, dev, l.Part(disk.RootA).Offset(), b.res.RootSize)
	if hashFile(t, rootA) != hashFile(t, b.res.RootFile) {
		t.Errorf("root A on the device differs from the built root file system")
	}
	perm := testimage.Extract(t, dev, l.Part(disk.Perm).Offset(), l.Part(disk.Perm).Size())
	if out, err := exec.Command(e2fsck, "-fn", perm).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn /perm on the device: %v\n%s", err, out)
	}
}
