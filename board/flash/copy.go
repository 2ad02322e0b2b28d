package flash

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/perm"
	"golang.org/x/sys/unix"
)

// CopyImage writes the image file src (made by `board build`) to dst,
// a disk of dstSize bytes, and makes /perm span the whole disk: it copies
// the boot and root A file systems (only as many bytes as they hold),
// writes partition tables for dst's size with the image's identity, and
// formats /perm afresh. Root B is left alone except for its first MiB,
// which is cleared so no stale file system signature remains there.
func CopyImage(dst *os.File, dstSize int64, src *os.File) (*disk.Layout, error) {
	id, err := disk.ReadID(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Name(), err)
	}
	var mbr [disk.SectorSize]byte
	if _, err := src.ReadAt(mbr[:], 0); err != nil {
		return nil, err
	}
	if start := binary.LittleEndian.Uint32(mbr[446+8:]); start != disk.FirstLBA {
		return nil, fmt.Errorf("%s: boot partition at LBA %d, want %d", src.Name(), start, disk.FirstLBA)
	}
	l, err := disk.NewLayout(dstSize)
	if err != nil {
		return nil, err
	}
	boot, root := l.Part(disk.Boot), l.Part(disk.RootA)

	bootSize, err := fatSize(src, boot.Offset())
	if err != nil {
		return nil, fmt.Errorf("%s: boot partition: %w", src.Name(), err)
	}
	rootSize, mtime, err := squashfsSize(src, root.Offset())
	if err != nil {
		return nil, fmt.Errorf("%s: root partition: %w", src.Name(), err)
	}
	for _, r := range []struct {
		off, n, max int64
	}{{boot.Offset(), bootSize, boot.Size()}, {root.Offset(), rootSize, root.Size()}} {
		if r.n > r.max {
			return nil, fmt.Errorf("%s: file system of %d bytes in a partition of %d", src.Name(), r.n, r.max)
		}
		if _, err := io.Copy(io.NewOffsetWriter(dst, r.off), io.NewSectionReader(src, r.off, r.n)); err != nil {
			return nil, fmt.Errorf("writing %s: %w", dst.Name(), err)
		}
	}
	if err := ClearRootB(dst, l); err != nil {
		return nil, err
	}
	if err := l.WriteTables(dst, id); err != nil {
		return nil, err
	}
	p := l.Part(disk.Perm)
	var permUUID [16]byte
	g := id.PartGUID(disk.Perm)
	// GPT stores the first three fields little-endian; a file system UUID
	// is in textual order.
	permUUID = [16]byte{g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]}
	if err := perm.Format(dst, p.Offset(), p.Size(), permUUID, mtime); err != nil {
		return nil, err
	}
	return l, dst.Sync()
}

// ClearRootB zeroes the first MiB of root B.
func ClearRootB(dst io.WriterAt, l *disk.Layout) error {
	if _, err := dst.WriteAt(make([]byte, 1<<20), l.Part(disk.RootB).Offset()); err != nil {
		return fmt.Errorf("clearing root B: %w", err)
	}
	return nil
}

// fatSize reads the total size from a FAT boot sector at off.
func fatSize(r io.ReaderAt, off int64) (int64, error) {
	b := make([]byte, disk.SectorSize)
	if _, err := r.ReadAt(b, off); err != nil {
		return 0, err
	}
	if b[510] != 0x55 || b[511] != 0xAA || binary.LittleEndian.Uint16(b[11:]) != disk.SectorSize {
		return 0, fmt.Errorf("no FAT file system")
	}
	n := int64(binary.LittleEndian.Uint16(b[19:]))
	if n == 0 {
		n = int64(binary.LittleEndian.Uint32(b[32:]))
	}
	return n * disk.SectorSize, nil
}

// squashfsSize reads a squashfs superblock at off: the bytes used (rounded
// up to 4 KiB, as written) and the modification time.
func squashfsSize(r io.ReaderAt, off int64) (int64, time.Time, error) {
	b := make([]byte, 96)
	if _, err := r.ReadAt(b, off); err != nil {
		return 0, time.Time{}, err
	}
	if binary.LittleEndian.Uint32(b[0:]) != 0x73717368 {
		return 0, time.Time{}, fmt.Errorf("no squashfs file system")
	}
	used := int64(binary.LittleEndian.Uint64(b[40:]))
	return (used + 4095) / 4096 * 4096, time.Unix(int64(binary.LittleEndian.Uint32(b[8:])), 0), nil
}

// RereadPartitions asks the kernel to read the new partition table of the
// block device f (BLKRRPART), so /dev/sdX1... appear without replugging.
func RereadPartitions(f *os.File) error {
	return unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
}

// Size returns the size of the block device (or file) f.
func Size(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Mode().IsRegular() {
		return fi.Size(), nil
	}
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	_, err = f.Seek(0, io.SeekStart)
	return n, err
}
