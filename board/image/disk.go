package image

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/google/uuid"
	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/perm"
)

// MBRBootCode is what gokrazy's /update/mbr receives: the first 446 bytes
// of LBA 0 (boot code and disk signature, not the partition entries).
// They do not depend on the disk size.
func (r *Result) MBRBootCode() []byte {
	l, err := disk.NewLayout(disk.MinSize)
	if err != nil {
		panic(err) // MinSize always fits
	}
	mbr := l.HybridMBR(disk.NewID(r.Hostname, r.GOARCH))
	return bytes.Clone(mbr[:disk.BootCodeSize])
}

// WriteBoot writes the boot file system to w.
func (r *Result) WriteBoot(w io.Writer) error {
	_, err := r.Boot.WriteTo(w)
	return err
}

// OpenRoot opens the root file system.
func (r *Result) OpenRoot() (*os.File, error) { return os.Open(r.RootFile) }

// PermUUID is the file system UUID of /perm: partition 4's PARTUUID.
func PermUUID(hostname string) [16]byte {
	return uuid.MustParse(disk.PartGUID(hostname, disk.Perm).String())
}

// WriteDisk writes the whole disk to f, which is size bytes large:
// partition tables, boot file system, root A, and an empty ext4 /perm
// spanning the rest. Root B is left as it is; the first update writes it.
// An image file is made anew, sparse: only what is not zero takes space
// (and time to write to a card).
func (r *Result) WriteDisk(f *os.File, size int64) (*disk.Layout, error) {
	l, err := disk.NewLayout(size)
	if err != nil {
		return nil, err
	}
	formatPerm := perm.Format
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		if err := f.Truncate(0); err != nil {
			return nil, err
		}
		if err := f.Truncate(l.Size()); err != nil {
			return nil, err
		}
		formatPerm = perm.FormatZeroed // the file is all holes
	} else {
		// A used disk: leave no stale file system signature on root B.
		if _, err := f.WriteAt(make([]byte, 1<<20), l.Part(disk.RootB).Offset()); err != nil {
			return nil, fmt.Errorf("clearing root B: %w", err)
		}
	}
	if err := l.WriteTables(f, disk.NewID(r.Hostname, r.GOARCH)); err != nil {
		return nil, err
	}
	boot := l.Part(disk.Boot)
	if _, err := r.Boot.WriteTo(io.NewOffsetWriter(f, boot.Offset())); err != nil {
		return nil, fmt.Errorf("writing the boot partition: %w", err)
	}
	root, err := r.OpenRoot()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if _, err := io.Copy(io.NewOffsetWriter(f, l.Part(disk.RootA).Offset()), root); err != nil {
		return nil, fmt.Errorf("writing root A: %w", err)
	}
	p := l.Part(disk.Perm)
	if err := formatPerm(f, p.Offset(), p.Size(), PermUUID(r.Hostname), r.modTime); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return l, nil
}
