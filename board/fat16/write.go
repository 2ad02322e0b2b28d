package fat16

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/homederp/homederp/board/internal/biosmsg"
)

const (
	attrVolumeID  = 0x08
	attrDirectory = 0x10
	attrArchive   = 0x20

	mediaFixed = 0xF8
	endOfChain = 0xFFFF
)

// dirEntries serializes a directory: the volume label (root) or "." and
// ".." (subdirectories), then each child's long-name entries and short
// entry, in name order.
func (im *Image) dirEntries(dir, parent *node, isRoot bool) ([]byte, error) {
	date, tm := fatTime(im.opts.ModTime)
	short := func(name [11]byte, nt, attr byte, cluster uint16, size uint32) [dirEntrySize]byte {
		var e [dirEntrySize]byte
		copy(e[0:11], name[:])
		e[11] = attr
		e[12] = nt
		binary.LittleEndian.PutUint16(e[14:], tm)   // creation time
		binary.LittleEndian.PutUint16(e[16:], date) // creation date
		binary.LittleEndian.PutUint16(e[18:], date) // last access date
		binary.LittleEndian.PutUint16(e[22:], tm)   // write time
		binary.LittleEndian.PutUint16(e[24:], date) // write date
		binary.LittleEndian.PutUint16(e[26:], cluster)
		binary.LittleEndian.PutUint32(e[28:], size)
		return e
	}
	var out []byte
	if isRoot {
		var label [11]byte
		copy(label[:], pad(im.label(), 11))
		e := short(label, 0, attrVolumeID, 0, 0)
		out = append(out, e[:]...)
	} else {
		var dot, dotdot [11]byte
		copy(dot[:], pad(".", 11))
		copy(dotdot[:], pad("..", 11))
		e := short(dot, 0, attrDirectory, dir.firstCluster, 0)
		out = append(out, e[:]...)
		var up uint16 // 0 means the root directory
		if parent != nil && parent != im.root {
			up = parent.firstCluster
		}
		e = short(dotdot, 0, attrDirectory, up, 0)
		out = append(out, e[:]...)
	}
	for _, c := range dir.sorted() {
		if c.lfn {
			for _, l := range lfnEntries(c.name, c.short) {
				out = append(out, l[:]...)
			}
		}
		attr, size := byte(attrArchive), uint32(c.size)
		if c.dir {
			attr, size = attrDirectory, 0
		}
		e := short(c.short, c.ntCase, attr, c.firstCluster, size)
		out = append(out, e[:]...)
	}
	if isRoot && len(out) > im.rootEntries*dirEntrySize {
		return nil, fmt.Errorf("fat16: root directory overflow")
	}
	return out, nil
}

func (im *Image) label() string {
	if im.opts.Label == "" {
		return "NO NAME"
	}
	return im.opts.Label
}

// fatTime encodes t (UTC) as FAT date and time; FAT cannot express dates
// before 1980.
func fatTime(t time.Time) (date, tm uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, tm
}

func (im *Image) bootSector() []byte {
	b := make([]byte, SectorSize)
	copy(b[0:3], []byte{0xEB, 0x3C, 0x90}) // jmp short 0x3E; nop
	copy(b[3:11], "homederp")              // OEM name
	binary.LittleEndian.PutUint16(b[11:], SectorSize)
	b[13] = sectorsPerCluster
	binary.LittleEndian.PutUint16(b[14:], reservedSectors)
	b[16] = 1 // one FAT: gokrazy's reader assumes it
	binary.LittleEndian.PutUint16(b[17:], uint16(im.rootEntries))
	if im.totalSectors < 0x10000 {
		binary.LittleEndian.PutUint16(b[19:], uint16(im.totalSectors))
	} else {
		binary.LittleEndian.PutUint32(b[32:], uint32(im.totalSectors))
	}
	b[21] = mediaFixed
	binary.LittleEndian.PutUint16(b[22:], uint16(im.fatSectors))
	binary.LittleEndian.PutUint16(b[24:], 63)  // sectors per track
	binary.LittleEndian.PutUint16(b[26:], 255) // heads
	binary.LittleEndian.PutUint32(b[28:], im.opts.HiddenSectors)
	b[36] = 0x80 // drive number
	b[38] = 0x29 // extended boot signature: the next three fields exist
	binary.LittleEndian.PutUint32(b[39:], im.opts.VolumeID)
	copy(b[43:54], pad(im.label(), 11))
	copy(b[54:62], "FAT16   ")
	// Boot code: print a hint and halt, for a BIOS that boots this
	// partition by mistake.
	copy(b[62:], notBootable)
	b[510], b[511] = 0x55, 0xAA
	return b
}

// notBootable is the boot sector's code at offset 0x3E (address 0x7C3E
// once loaded), for a BIOS that boots the partition itself.
var notBootable = biosmsg.Code(0x7C3E, "This is the homederp boot partition: it boots through UEFI or the Raspberry Pi firmware.\r\n")

// fat returns the file allocation table: each file and directory is one
// chain of consecutive clusters.
func (im *Image) fat() []byte {
	b := make([]byte, im.fatSectors*SectorSize)
	binary.LittleEndian.PutUint16(b[0:], 0xFF00|mediaFixed)
	binary.LittleEndian.PutUint16(b[2:], endOfChain)
	for _, n := range im.order {
		first := int(n.firstCluster)
		for i := 0; i < n.clusters; i++ {
			next := uint16(first + i + 1)
			if i == n.clusters-1 {
				next = endOfChain
			}
			binary.LittleEndian.PutUint16(b[2*(first+i):], next)
		}
	}
	return b
}

// WriteTo writes the file system to w, sequentially.
func (im *Image) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	if _, err := bw.Write(im.bootSector()); err != nil {
		return cw.n, err
	}
	if err := writeZeros(bw, (reservedSectors-1)*SectorSize); err != nil {
		return cw.n, err
	}
	if _, err := bw.Write(im.fat()); err != nil {
		return cw.n, err
	}
	rootDir := make([]byte, im.rootEntries*dirEntrySize)
	copy(rootDir, im.root.dirBytes)
	if _, err := bw.Write(rootDir); err != nil {
		return cw.n, err
	}
	written := 0
	for _, n := range im.order {
		if int(n.firstCluster)-2 != written {
			return cw.n, fmt.Errorf("fat16: internal error: cluster %d out of order", n.firstCluster)
		}
		var got int64
		if n.dir {
			m, err := bw.Write(n.dirBytes)
			if err != nil {
				return cw.n, err
			}
			got = int64(m)
		} else {
			rc, err := n.open()
			if err != nil {
				return cw.n, fmt.Errorf("fat16: opening %s: %w", n.name, err)
			}
			got, err = io.Copy(bw, io.LimitReader(rc, n.size+1))
			rc.Close()
			if err != nil {
				return cw.n, fmt.Errorf("fat16: copying %s: %w", n.name, err)
			}
			if got != n.size {
				return cw.n, fmt.Errorf("fat16: %s: got %d bytes, declared %d (did it change?)", n.name, got, n.size)
			}
		}
		if err := writeZeros(bw, int64(n.clusters)*clusterSize-got); err != nil {
			return cw.n, err
		}
		written += n.clusters
	}
	if err := writeZeros(bw, int64(im.clusterCount-written)*clusterSize); err != nil {
		return cw.n, err
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	if cw.n != im.Size() {
		return cw.n, fmt.Errorf("fat16: internal error: wrote %d bytes, want %d", cw.n, im.Size())
	}
	return cw.n, nil
}

var zeros = make([]byte, 64<<10)

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		m := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:m]); err != nil {
			return err
		}
		n -= m
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
