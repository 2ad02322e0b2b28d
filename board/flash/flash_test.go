package flash

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/internal/testimage"
	"github.com/homederp/homederp/board/squashfs"
	"github.com/homederp/homederp/internal/testenv"
)

// fakeSys builds a sysfs tree with one disk sdb (8:16) and its partition
// sdb1 (8:17), as the kernel lays it out.
func fakeSys(t *testing.T) Env {
	t.Helper()
	root := t.TempDir()
	sys := filepath.Join(root, "sys")
	diskDir := filepath.Join(sys, "devices", "pci0000:00", "usb1", "block", "sdb")
	files := map[string]string{
		"size":                     "62333952\n", // 29.7 GiB
		"removable":                "1\n",
		"dev":                      "8:16\n",
		"device/vendor":            "SanDisk \n",
		"device/model":             "Ultra Fit\n",
		"sdb1/partition":           "1\n",
		"sdb1/size":                "62331904\n",
		"sdb1/dev":                 "8:17\n",
		"holders/.keep":            "",
		"sdb1/holders/.keep":       "",
		"queue/logical_block_size": "512\n",
	}
	for p, content := range files {
		full := filepath.Join(diskDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0644); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []struct{ link, target string }{
		{"dev/block/8:16", diskDir},
		{"dev/block/8:17", filepath.Join(diskDir, "sdb1")},
		{"class/block/sdb", diskDir},
		{"class/block/sdb1", filepath.Join(diskDir, "sdb1")},
	} {
		p := filepath.Join(sys, l.link)
		if err := os.MkdirAll(filepath.Dir(p), 0755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l.target, p); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(diskDir, "holders", ".keep"))
	os.Remove(filepath.Join(diskDir, "sdb1", "holders", ".keep"))
	env := Env{Sys: sys, MountInfo: filepath.Join(root, "mountinfo"), Swaps: filepath.Join(root, "swaps")}
	const mounts = "22 27 0:21 / /proc rw,relatime - proc proc rw\n27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	if err := os.WriteFile(env.MountInfo, []byte(mounts), 0644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.Swaps, []byte("Filename\tType\tSize\tUsed\tPriority\n"), 0644); err != nil {
		t.Fatal(err)
	}
	return env
}

func TestInspect(t *testing.T) {
	env := fakeSys(t)
	d, err := inspectDev("/dev/sdb", "8:16", env)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "sdb" || d.Size != 62333952*512 || d.Model != "SanDisk Ultra Fit" || !d.Removable {
		t.Errorf("Inspect: got %+v", d)
	}
	if len(d.Partitions) != 1 || d.Partitions[0] != (Partition{"sdb1", "8:17", 62331904 * 512}) {
		t.Errorf("partitions: got %+v", d.Partitions)
	}
	if err := d.InUse(env); err != nil {
		t.Errorf("InUse of an unused disk: %v", err)
	}
	desc := d.Describe()
	for _, want := range []string{"/dev/sdb", "SanDisk Ultra Fit", "29.7 GiB", "/dev/sdb1"} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
	if _, err := inspectDev("/dev/sdb1", "8:17", env); err == nil || !strings.Contains(err.Error(), "is a partition") {
		t.Errorf("Inspect of a partition: got %v, want a refusal", err)
	}
}

func TestInUse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mountinfo string
		swaps     string
		holder    string // a holder of sdb1, e.g. dm-0
		want      string
	}{
		{name: "partition mounted", mountinfo: "40 27 8:17 / /media/user/boot rw - vfat /dev/sdb1 rw\n", want: "/dev/sdb1 is mounted on /media/user/boot"},
		{name: "mount point with a space", mountinfo: "40 27 8:17 / /media/my\\040card rw - vfat /dev/sdb1 rw\n", want: "mounted on /media/my card"},
		{name: "system disk", mountinfo: "41 1 8:16 / / rw - ext4 /dev/sdb rw\n", want: "booted from"},
		{name: "swap", swaps: "/dev/sdb1 partition 1000 0 -2\n", want: "/dev/sdb1 is used as swap"},
		{name: "device-mapper", holder: "dm-0", want: "in use by /dev/dm-0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := fakeSys(t)
			if tc.mountinfo != "" {
				b, _ := os.ReadFile(env.MountInfo)
				os.WriteFile(env.MountInfo, append(b, tc.mountinfo...), 0644)
			}
			if tc.swaps != "" {
				b, _ := os.ReadFile(env.Swaps)
				os.WriteFile(env.Swaps, append(b, tc.swaps...), 0644)
			}
			if tc.holder != "" {
				dir := filepath.Join(env.Sys, "class", "block", "sdb1", "holders", tc.holder)
				if err := os.MkdirAll(dir, 0755); err != nil {
					t.Fatal(err)
				}
			}
			d, err := inspectDev("/dev/sdb", "8:16", env)
			if err != nil {
				t.Fatal(err)
			}
			err = d.InUse(env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("InUse: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestNotABlockDevice(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file.img")
	os.WriteFile(p, nil, 0644)
	if _, err := Inspect(p, Host); err == nil || !strings.Contains(err.Error(), "not a block device") {
		t.Errorf("Inspect(regular file): got %v", err)
	}
}

// TestLoopDevice flashes an image to a real loop device and checks the
// result with sfdisk, e2fsck and fsck.fat. (Loop devices stand in for SD
// cards; the test reads partitions by offset, because kernels without
// partition table support show no /dev/loopNpM.)
func TestLoopDevice(t *testing.T) {
	testenv.NeedLong(t)
	sfdisk := testenv.NeedCommand(t, "sfdisk")
	e2fsck := testenv.NeedCommand(t, "e2fsck")
	fsck := testenv.NeedCommand(t, "fsck.fat")
	const size = 1400 << 20
	dev := testimage.Loop(t, size)
	img := filepath.Join(t.TempDir(), "image.img")
	testimage.Write(t, img, 1200<<20, "homederp", "arm64")

	d, err := Inspect(dev, Host)
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != size {
		t.Errorf("size of %s: got %d, want %d", dev, d.Size, size)
	}
	if err := d.InUse(Host); err != nil {
		t.Fatalf("InUse of a fresh loop device: %v", err)
	}
	f, err := os.OpenFile(dev, os.O_RDWR|os.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	devSize, err := Size(f)
	if err != nil || devSize != size {
		t.Fatalf("Size(%s): got %d, %v; want %d", dev, devSize, err, size)
	}
	l, err := CopyImage(f, size, src)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	out, err := exec.Command(sfdisk, "-J", dev).Output()
	if err != nil {
		t.Fatalf("sfdisk -J %s: %v", dev, err)
	}
	var pt struct {
		PartitionTable struct {
			ID         string
			Partitions []struct{ Start, Size int64 }
		}
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		t.Fatal(err)
	}
	if got, want := pt.PartitionTable.ID, disk.DiskGUID("homederp").String(); got != want {
		t.Errorf("disk GUID after flashing: got %s, want %s (the image's)", got, want)
	}
	parts := pt.PartitionTable.Partitions
	if len(parts) != 4 || parts[3].Start != l.Part(disk.Perm).Start || parts[3].Start+parts[3].Size != size/512-34 {
		t.Errorf("partitions after flashing: got %+v, want /perm to reach the end of the %d MiB device", parts, size>>20)
	}
	perm := testimage.Extract(t, dev, l.Part(disk.Perm).Offset(), l.Part(disk.Perm).Size())
	if out, err := exec.Command(e2fsck, "-fn", perm).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn on /perm: %v\n%s", err, out)
	}
	boot := testimage.Extract(t, dev, l.Part(disk.Boot).Offset(), 16<<20)
	if out, err := exec.Command(fsck, "-n", boot).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n on the boot partition: %v\n%s", err, out)
	}
}

// TestMountedDisk refuses a disk with a mounted file system, read from the
// real mount table. The file system is a squashfs from this module's
// writer, so the test also has the host kernel read one.
func TestMountedDisk(t *testing.T) {
	testenv.NeedRoot(t)
	mount := testenv.NeedCommand(t, "mount")
	fsImg := filepath.Join(t.TempDir(), "fs.squashfs")
	root := squashfs.New()
	if err := root.AddBytes("/etc/hostname", 0644, []byte("homederp")); err != nil {
		t.Fatal(err)
	}
	if err := root.Symlink("/var", "/perm/var"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(fsImg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.WriteTo(f, squashfs.Options{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dev := testimage.LoopFile(t, fsImg)
	mnt := t.TempDir()
	if out, err := exec.Command(mount, "-t", "squashfs", "-o", "ro", dev, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v\n%s", dev, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	if b, err := os.ReadFile(filepath.Join(mnt, "etc/hostname")); err != nil || string(b) != "homederp" {
		t.Errorf("reading the mounted squashfs: got %q, %v", b, err)
	}
	if target, err := os.Readlink(filepath.Join(mnt, "var")); err != nil || target != "/perm/var" {
		t.Errorf("readlink /var on the mounted squashfs: got %q, %v", target, err)
	}
	d, err := Inspect(dev, Host)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.InUse(Host); err == nil || !strings.Contains(err.Error(), "is mounted on "+mnt) {
		t.Errorf("InUse of the mounted %s: got %v", dev, err)
	}
	if f, err := os.OpenFile(dev, os.O_RDWR|os.O_EXCL, 0); err == nil {
		f.Close()
		t.Errorf("opening a mounted disk with O_EXCL succeeded")
	}
}

// TestSystemDisk refuses the disk the running system booted from, and
// (when the root file system is on a partition) that partition too.
func TestSystemDisk(t *testing.T) {
	disk, part := rootDevice(t)
	testenv.Need(t, disk != "", "a root file system on a block device")
	d, err := Inspect(disk, Host)
	if err != nil {
		t.Fatalf("Inspect(%s), the whole system disk: %v", disk, err)
	}
	if err := d.InUse(Host); err == nil || !strings.Contains(err.Error(), "booted from") {
		t.Errorf("InUse(%s), the system disk: got %v, want a refusal", disk, err)
	}
	if part != "" {
		if _, err := Inspect(part, Host); err == nil || !strings.Contains(err.Error(), "is a partition") {
			t.Errorf("Inspect(%s), the root partition: got %v, want a refusal naming the whole disk", part, err)
		}
	}
}

// rootDevice is the /dev node of the block device mounted on / (the
// whole disk), and the partition it is mounted from if it is one; "" for
// either that does not exist.
func rootDevice(t *testing.T) (disk, part string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[4] != "/" {
			continue
		}
		link, err := filepath.EvalSymlinks("/sys/dev/block/" + fields[2])
		if err != nil {
			continue
		}
		name := filepath.Base(link)
		if _, err := os.Stat(filepath.Join(link, "partition")); err == nil {
			if p := "/dev/" + name; fileExists(p) {
				part = p
			}
			name = filepath.Base(filepath.Dir(link)) // the whole disk
		}
		if p := "/dev/" + name; fileExists(p) {
			return p, part
		}
	}
	return "", ""
}
