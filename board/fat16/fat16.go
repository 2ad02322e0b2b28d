// Package fat16 writes the FAT16 boot file system of a gokrazy image.
//
// It is not a general FAT writer: it writes exactly the shape that
// gokrazy's own FAT reader (github.com/gokrazy/internal/fat, used on the
// device by /update/switch, /update/testboot and the kexec reboot) can
// parse, and that firmware (Raspberry Pi boot ROM, UEFI) and Linux read:
//
//   - FAT16 (at least 4085 clusters), 512-byte sectors, 4 sectors per
//     cluster, 4 reserved sectors and ONE FAT: gokrazy's reader computes
//     the root directory offset as (reserved + FATSz16) sectors, so a
//     second FAT copy would send it to the wrong place;
//   - a fixed-size root directory (BPB_RootEntCnt), sized to its contents;
//   - every file and directory in one contiguous run of clusters, so the
//     device can rewrite cmdline.txt in place knowing only its offset;
//   - short 8.3 names in upper case (the reader compares case-insensitively)
//     with VFAT long-name entries where the real name needs them, e.g.
//     loader/entries/gokrazy.conf is found by its short name GOKRAZ~1.CON;
//   - the file system is only as large as its contents (rounded up to the
//     FAT16 minimum), not as large as the partition it is written to.
//
// The output depends only on the files added and on Options: entries are
// sorted and every timestamp is Options.ModTime, so images are
// reproducible.
package fat16

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Geometry. These are fixed: gokrazy's reader takes them from the boot
// sector, but firmware and the Pi 3 expect this layout.
const (
	SectorSize        = 512
	sectorsPerCluster = 4
	clusterSize       = SectorSize * sectorsPerCluster
	reservedSectors   = 4 // one cluster
	dirEntrySize      = 32

	// FAT16 is defined by its cluster count: fewer than 4085 clusters is
	// FAT12, 65525 or more is FAT32.
	minClusters = 4085
	maxClusters = 65524
)

// Options are the volume's fixed parameters.
type Options struct {
	// VolumeID is the serial number in the boot sector, e.g. 0x4f9f2cab.
	VolumeID uint32
	// Label is the volume label, at most 11 characters, e.g. "HOMEDERP".
	Label string
	// ModTime stamps every directory entry, e.g. the build timestamp.
	ModTime time.Time
	// HiddenSectors is the LBA of the partition the file system is written
	// to, e.g. 8192. Linux and gokrazy ignore it; it is set for tools that
	// check it.
	HiddenSectors uint32
}

// FS is the tree of a FAT file system to be written.
type FS struct {
	root *node
}

type node struct {
	name     string // as given, e.g. "gokrazy.conf"
	dir      bool
	children map[string]*node // by upper-case name: FAT is case-insensitive

	// files
	size int64
	open func() (io.ReadCloser, error)

	// layout, filled in by Build
	short        [11]byte
	ntCase       byte // NTRes lower-case flags
	lfn          bool
	firstCluster uint16
	clusters     int
	dirBytes     []byte // serialized directory, for directories
}

// New returns an empty file system.
func New() *FS {
	return &FS{root: &node{dir: true, children: map[string]*node{}}}
}

// AddFile adds the file at p (e.g. "loader/entries/gokrazy.conf"),
// creating its parent directories. open is called once when the image is
// written and must yield exactly size bytes.
func (fs *FS) AddFile(p string, size int64, open func() (io.ReadCloser, error)) error {
	if size < 0 || size > 0xFFFFFFFF {
		return fmt.Errorf("fat16: %s: size %d out of range", p, size)
	}
	parent, name, err := fs.parent(p)
	if err != nil {
		return err
	}
	key := strings.ToUpper(name)
	if _, ok := parent.children[key]; ok {
		return fmt.Errorf("fat16: %s: already exists (FAT names are case-insensitive)", p)
	}
	parent.children[key] = &node{name: name, size: size, open: open}
	return nil
}

// AddBytes adds a file with the content b.
func (fs *FS) AddBytes(p string, b []byte) error {
	b = bytes.Clone(b)
	return fs.AddFile(p, int64(len(b)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// AddHostFile adds the host file src at p.
func (fs *FS) AddHostFile(p, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("fat16: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("fat16: %s is not a regular file", src)
	}
	return fs.AddFile(p, fi.Size(), func() (io.ReadCloser, error) { return os.Open(src) })
}

// Mkdir creates the directory p and its parents (existing ones are fine).
func (fs *FS) Mkdir(p string) error {
	_, err := fs.mkdirAll(strings.Split(strings.Trim(p, "/"), "/"))
	return err
}

func (fs *FS) parent(p string) (*node, string, error) {
	p = strings.Trim(p, "/")
	if p == "" || path.Clean(p) != p {
		return nil, "", fmt.Errorf("fat16: invalid path %q", p)
	}
	parts := strings.Split(p, "/")
	for _, part := range parts {
		if err := validName(part); err != nil {
			return nil, "", fmt.Errorf("fat16: %s: %w", p, err)
		}
	}
	dir, err := fs.mkdirAll(parts[:len(parts)-1])
	if err != nil {
		return nil, "", err
	}
	return dir, parts[len(parts)-1], nil
}

func (fs *FS) mkdirAll(parts []string) (*node, error) {
	dir := fs.root
	for _, part := range parts {
		if part == "" {
			continue
		}
		if err := validName(part); err != nil {
			return nil, fmt.Errorf("fat16: %w", err)
		}
		key := strings.ToUpper(part)
		child, ok := dir.children[key]
		if !ok {
			child = &node{name: part, dir: true, children: map[string]*node{}}
			dir.children[key] = child
		}
		if !child.dir {
			return nil, fmt.Errorf("fat16: %s is a file, not a directory", part)
		}
		dir = child
	}
	return dir, nil
}

// sorted returns the children of a directory in a fixed order.
func (n *node) sorted() []*node {
	keys := make([]string, 0, len(n.children))
	for k := range n.children {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*node, len(keys))
	for i, k := range keys {
		out[i] = n.children[k]
	}
	return out
}

// Image is a laid-out file system, ready to be written.
type Image struct {
	opts          Options
	root          *node
	order         []*node // directories and files in cluster order
	fatSectors    int
	rootEntries   int
	clusterCount  int
	totalSectors  int
	dataStart     int64 // byte offset of cluster 2
	rootDirOffset int64
	extents       map[string][2]int64
}

// Size is the length of the file system in bytes.
func (im *Image) Size() int64 { return int64(im.totalSectors) * SectorSize }

// Extent returns the byte offset and length of the file at p (e.g.
// "cmdline.txt") within the image.
func (im *Image) Extent(p string) (offset, length int64, ok bool) {
	e, ok := im.extents[strings.ToUpper(strings.Trim(p, "/"))]
	return e[0], e[1], ok
}

// Build lays the file system out.
func (fs *FS) Build(opts Options) (*Image, error) {
	if len(opts.Label) > 11 {
		return nil, fmt.Errorf("fat16: label %q longer than 11 characters", opts.Label)
	}
	im := &Image{opts: opts, root: fs.root, extents: map[string][2]int64{}}

	// Names first: directory sizes depend on the long-name entries.
	if err := assignNames(fs.root); err != nil {
		return nil, err
	}

	// Allocate clusters depth-first, a directory before its contents.
	next := 2
	var alloc func(dir *node, isRoot bool) error
	alloc = func(dir *node, isRoot bool) error {
		if !isRoot {
			dir.clusters = ceilDiv(dirSlots(dir, false)*dirEntrySize, clusterSize)
			dir.firstCluster = uint16(next)
			next += dir.clusters
			im.order = append(im.order, dir)
		}
		for _, c := range dir.sorted() {
			if c.dir {
				continue
			}
			c.clusters = ceilDiv64(c.size, clusterSize)
			if c.clusters > 0 {
				c.firstCluster = uint16(next)
				next += c.clusters
				im.order = append(im.order, c)
			}
			if next-2 > maxClusters {
				return fmt.Errorf("fat16: contents exceed %d clusters (%d MiB)", maxClusters, maxClusters*clusterSize>>20)
			}
		}
		for _, c := range dir.sorted() {
			if c.dir {
				if err := alloc(c, false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := alloc(fs.root, true); err != nil {
		return nil, err
	}
	used := next - 2
	im.clusterCount = max(used, minClusters)
	if im.clusterCount > maxClusters {
		return nil, fmt.Errorf("fat16: contents need %d clusters, FAT16 allows %d", used, maxClusters)
	}

	// The root directory holds a whole number of sectors.
	im.rootEntries = roundUp(dirSlots(fs.root, true), SectorSize/dirEntrySize)
	rootSectors := im.rootEntries * dirEntrySize / SectorSize
	im.fatSectors = ceilDiv((im.clusterCount+2)*2, SectorSize)
	// Pad the FAT so that cluster 2 starts on a cluster boundary: with the
	// partition on a 4 MiB boundary, every cluster is then 2 KiB-aligned
	// on the card.
	for (reservedSectors+im.fatSectors+rootSectors)%sectorsPerCluster != 0 {
		im.fatSectors++
	}
	dataSector := reservedSectors + im.fatSectors + rootSectors
	im.totalSectors = dataSector + im.clusterCount*sectorsPerCluster
	im.rootDirOffset = int64(reservedSectors+im.fatSectors) * SectorSize
	im.dataStart = int64(dataSector) * SectorSize

	// Serialize the directories now that every cluster is known.
	var serialize func(dir *node, parent *node, prefix string) error
	serialize = func(dir *node, parent *node, prefix string) error {
		isRoot := dir == fs.root
		b, err := im.dirEntries(dir, parent, isRoot)
		if err != nil {
			return err
		}
		dir.dirBytes = b
		for _, c := range dir.sorted() {
			p := strings.ToUpper(prefix + c.name)
			if c.dir {
				if err := serialize(c, dir, prefix+c.name+"/"); err != nil {
					return err
				}
				continue
			}
			off := int64(0)
			if c.clusters > 0 {
				off = im.clusterOffset(c.firstCluster)
			}
			im.extents[p] = [2]int64{off, c.size}
		}
		return nil
	}
	if err := serialize(fs.root, nil, ""); err != nil {
		return nil, err
	}
	return im, nil
}

func (im *Image) clusterOffset(c uint16) int64 {
	return im.dataStart + int64(c-2)*clusterSize
}

// dirSlots is the number of 32-byte entries a directory needs.
func dirSlots(dir *node, isRoot bool) int {
	n := 0
	if isRoot {
		n++ // volume label
	} else {
		n += 2 // . and ..
	}
	for _, c := range dir.children {
		n++
		if c.lfn {
			n += lfnSlots(c.name)
		}
	}
	return n
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func ceilDiv64(a int64, b int) int { return int((a + int64(b) - 1) / int64(b)) }

func roundUp(a, b int) int { return ceilDiv(a, b) * b }
