// Package disk lays out a gokrazy disk and writes its partition tables:
// GPT with the hybrid MBR that the Raspberry Pi boot ROM needs.
//
// The layout is gokrazy's, fixed except for the last partition:
//
//	#  start LBA   sectors    use
//	1  8192        204800     boot, FAT (100 MiB)
//	2  212992      1024000    root A, squashfs (500 MiB)
//	3  1236992     1024000    root B, squashfs (500 MiB)
//	4  2260992     the rest   /perm, ext4 (the last 34 sectors stay free)
//
// gokrazy's runtime finds its disk through the GPT: the kernel command line
// says root=PARTUUID=<GUID of partition 1>/PARTNROFF=1 (or 2), and
// gokrazy's rootdev package compares only the first partition entry of
// every disk with that GUID and assumes partitions 1 to 4 are exactly
// these.
package disk

import (
	"fmt"
	"hash/fnv"
)

// SectorSize is the only sector size gokrazy supports.
const SectorSize = 512

// The fixed part of the layout, in sectors.
const (
	FirstLBA    = 8192    // 4 MiB: gokrazy's default; an SD card's erase block boundary
	BootSectors = 204800  // 100 MiB
	RootSectors = 1024000 // 500 MiB each for root A and root B

	gptSectors = 33 // header + 32 sectors of 128 entries of 128 bytes
	// gok leaves the last 34 sectors out of /perm: 33 hold the backup GPT.
	tailSectors = 34

	// MinPermBytes is the smallest /perm this tool creates.
	MinPermBytes = 64 << 20
)

// MinSize is the smallest disk (in bytes) a layout fits.
const MinSize = (FirstLBA+BootSectors+2*RootSectors+tailSectors)*SectorSize + MinPermBytes

// Partition numbers, as gokrazy's rootdev names them.
const (
	Boot  = 1
	RootA = 2
	RootB = 3
	Perm  = 4
)

// Part is one partition, in sectors.
type Part struct {
	Start   int64 // first LBA
	Sectors int64
}

// Offset and Size are the partition's byte range.
func (p Part) Offset() int64 { return p.Start * SectorSize }
func (p Part) Size() int64   { return p.Sectors * SectorSize }

// Layout is where the four partitions of a disk of a given size go.
type Layout struct {
	Sectors int64   // disk size
	Parts   [4]Part // partitions 1 to 4
}

// NewLayout lays out a disk of size bytes (rounded down to whole sectors).
func NewLayout(size int64) (*Layout, error) {
	if size < MinSize {
		return nil, fmt.Errorf("disk of %d MiB is too small: a gokrazy disk needs at least %d MiB", size>>20, (MinSize+(1<<20)-1)>>20)
	}
	n := size / SectorSize
	l := &Layout{Sectors: n}
	l.Parts[0] = Part{FirstLBA, BootSectors}
	l.Parts[1] = Part{FirstLBA + BootSectors, RootSectors}
	l.Parts[2] = Part{FirstLBA + BootSectors + RootSectors, RootSectors}
	permStart := FirstLBA + BootSectors + 2*RootSectors
	l.Parts[3] = Part{int64(permStart), n - tailSectors - int64(permStart)}
	return l, nil
}

// Part returns partition n (1 to 4).
func (l *Layout) Part(n int) Part { return l.Parts[n-1] }

// Size is the disk size in bytes.
func (l *Layout) Size() int64 { return l.Sectors * SectorSize }

// HostHash is gokrazy's disk identifier: FNV-1a (32 bit) of the hostname.
// It is the MBR disk signature and part of every GUID on the disk, so two
// disks with the same hostname in one machine collide (as with gok).
func HostHash(hostname string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(hostname))
	return h.Sum32()
}
