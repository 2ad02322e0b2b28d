// Package flash finds out whether a block device may be overwritten with
// a homederp image, and describes what is on it so a person can confirm.
//
// It refuses:
//   - anything that is not a whole-disk block device (a partition, a file);
//   - a disk any of whose partitions (or itself) is mounted — which
//     includes the disk the running system was booted from;
//   - a disk used as swap, or under device-mapper, LVM or RAID (holders),
//     which is how a root file system on LVM or LUKS shows up.
package flash

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Env is where the kernel's views of devices and mounts are read from;
// tests point it at files they write.
type Env struct {
	Sys       string // e.g. "/sys"
	MountInfo string // e.g. "/proc/self/mountinfo"
	Swaps     string // e.g. "/proc/swaps"
}

// Host is the running system.
var Host = Env{Sys: "/sys", MountInfo: "/proc/self/mountinfo", Swaps: "/proc/swaps"}

// Disk is a whole-disk block device.
type Disk struct {
	Path       string // as given, e.g. "/dev/disk/by-id/usb-SanDisk..."
	Name       string // kernel name, e.g. "sdb"
	Dev        string // major:minor, e.g. "8:16"
	Size       int64  // bytes
	Model      string // e.g. "SanDisk 3.2Gen1"
	Removable  bool
	Partitions []Partition
}

// Partition is a partition of a Disk.
type Partition struct {
	Name string // e.g. "sdb1"
	Dev  string // e.g. "8:17"
	Size int64
}

// Inspect looks the block device at path up in sysfs.
func Inspect(path string, env Env) (*Disk, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil, fmt.Errorf("%s is not a block device", path)
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	return inspectDev(path, dev, env)
}

func inspectDev(path, dev string, env Env) (*Disk, error) {
	link, err := filepath.EvalSymlinks(filepath.Join(env.Sys, "dev", "block", dev))
	if err != nil {
		return nil, fmt.Errorf("%s (%s) is not in sysfs: %w", path, dev, err)
	}
	name := filepath.Base(link)
	if fileExists(filepath.Join(link, "partition")) {
		return nil, fmt.Errorf("%s is a partition (%s); give the whole disk, e.g. /dev/%s", path, name, filepath.Base(filepath.Dir(link)))
	}
	d := &Disk{Path: path, Name: name, Dev: dev}
	d.Size, err = sectors(filepath.Join(link, "size"))
	if err != nil {
		return nil, err
	}
	d.Model = strings.TrimSpace(readFile(filepath.Join(link, "device", "model")))
	if v := strings.TrimSpace(readFile(filepath.Join(link, "device", "vendor"))); v != "" {
		d.Model = strings.TrimSpace(v + " " + d.Model)
	}
	d.Removable = strings.TrimSpace(readFile(filepath.Join(link, "removable"))) == "1"
	entries, err := os.ReadDir(link)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		p := filepath.Join(link, e.Name())
		if !strings.HasPrefix(e.Name(), name) || !fileExists(filepath.Join(p, "partition")) {
			continue
		}
		size, err := sectors(filepath.Join(p, "size"))
		if err != nil {
			return nil, err
		}
		d.Partitions = append(d.Partitions, Partition{e.Name(), strings.TrimSpace(readFile(filepath.Join(p, "dev"))), size})
	}
	sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].Name < d.Partitions[j].Name })
	return d, nil
}

// InUse returns why the disk must not be overwritten, or nil.
func (d *Disk) InUse(env Env) error {
	devs := map[string]string{d.Dev: d.Name}
	names := map[string]bool{d.Name: true}
	for _, p := range d.Partitions {
		devs[p.Dev] = p.Name
		names[p.Name] = true
	}
	var errs []error
	f, err := os.Open(env.MountInfo)
	if err != nil {
		return fmt.Errorf("cannot tell whether %s is mounted: %w", d.Path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		if name, ok := devs[fields[2]]; ok {
			what := fmt.Sprintf("/dev/%s is mounted on %s", name, unescape(fields[4]))
			if fields[4] == "/" {
				what += " (this is the disk the running system booted from)"
			}
			errs = append(errs, errors.New(what))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if b, err := os.ReadFile(env.Swaps); err == nil {
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 0 && names[filepath.Base(fields[0])] {
				errs = append(errs, fmt.Errorf("%s is used as swap", fields[0]))
			}
		}
	}
	for name := range names {
		dir := filepath.Join(env.Sys, "class", "block", name, "holders")
		holders, _ := os.ReadDir(dir)
		for _, h := range holders {
			errs = append(errs, fmt.Errorf("/dev/%s is in use by /dev/%s (device-mapper, LVM or RAID)", name, h.Name()))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("refusing to overwrite %s: %w", d.Path, errors.Join(errs...))
	}
	return nil
}

// Describe says what is on the disk now.
func (d *Disk) Describe() string {
	var b strings.Builder
	kind := "disk"
	if d.Removable {
		kind = "removable disk"
	}
	model := d.Model
	if model == "" {
		model = "unknown model"
	}
	fmt.Fprintf(&b, "%s: %s /dev/%s, %s, %s (%d bytes)\n", d.Path, kind, d.Name, model, human(d.Size), d.Size)
	if len(d.Partitions) == 0 {
		fmt.Fprintf(&b, "  no partitions\n")
	}
	for _, p := range d.Partitions {
		fmt.Fprintf(&b, "  /dev/%s  %s\n", p.Name, human(p.Size))
	}
	return b.String()
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

func sectors(p string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(readFile(p)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", p, err)
	}
	return n * 512, nil
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
