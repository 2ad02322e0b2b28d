// Package perm pre-formats a gokrazy disk's /perm partition as ext4.
//
// gokrazy's own answer, the github.com/gokrazy/mkfs package (mke2fs run on
// the device, then a reboot), is not available from this project's
// package sources, and an unformatted /perm boots read-only. So the image
// tool formats /perm itself with github.com/diskfs/go-diskfs, using the
// parameters that e2fsck accepts as clean: 4 KiB blocks, a journal, no
// resize inode (go-diskfs writes one e2fsck rejects), metadata checksums.
//
// /perm holds a few hundred files at most (the configuration, keys,
// certificates, tailscaled's state), so it gets one inode per 256 KiB
// instead of go-diskfs's one per 8 KiB: the inode tables, which a format
// writes out in full, were 3 % of the partition (1 GiB on a 32 GB card).
// What is left to write is mostly the journal's zeros; FormatZeroed skips
// those where the bytes are zero already.
//
// go-diskfs stamps the superblocks and the inodes it creates with the
// current time and a random directory hash seed. Format then rewrites
// those fields (and the checksums over them), so that the same inputs give
// the same bytes.
package perm

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"github.com/google/uuid"
)

// Label is the file system label.
const Label = "perm"

// InodeRatio is the bytes of /perm per inode.
const InodeRatio = 256 << 10

// Format creates an empty ext4 file system in the byte range [off,
// off+size) of f, with file system UUID id and every timestamp set to
// modTime.
func Format(f *os.File, off, size int64, id [16]byte, modTime time.Time) error {
	return create(f, f, off, size, id, modTime)
}

// FormatZeroed is Format for a range of f that reads as zero already, such
// as a new image file: it leaves out every write of zeros (the inode
// tables, the journal), so a sparse file stays sparse.
func FormatZeroed(f *os.File, off, size int64, id [16]byte, modTime time.Time) error {
	return create(f, zeroSkipper{f}, off, size, id, modTime)
}

// zeroSkipper drops writes of nothing but zeros.
type zeroSkipper struct{ *os.File }

func (z zeroSkipper) WriteAt(p []byte, off int64) (int, error) {
	for _, b := range p {
		if b != 0 {
			return z.File.WriteAt(p, off)
		}
	}
	return len(p), nil
}

func create(f *os.File, w fs.File, off, size int64, id [16]byte, modTime time.Time) error {
	u := uuid.UUID(id)
	_, err := ext4.Create(file.New(w, false), size, off, 512, &ext4.Params{
		UUID:            &u,
		VolumeName:      Label,
		SectorsPerBlock: 8, // 4 KiB blocks
		InodeRatio:      InodeRatio,
		Features: []ext4.FeatureOpt{
			ext4.WithFeatureReservedGDTBlocksForExpansion(false),
			ext4.WithFeatureMetadataChecksums(true),
		},
	})
	if err != nil {
		return fmt.Errorf("formatting /perm as ext4: %w", err)
	}
	if err := normalize(f, off, modTime); err != nil {
		return fmt.Errorf("formatting /perm as ext4: %w", err)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the raw CRC32C ext4 uses (no pre- or post-inversion).
func crc32c(seed uint32, b []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, b)
}

// Superblock fields (offsets within the 1024-byte superblock).
const (
	sbBlocksCountLo    = 0x04
	sbFirstDataBlock   = 0x14
	sbLogBlockSize     = 0x18
	sbBlocksPerGroup   = 0x20
	sbInodesPerGroup   = 0x28
	sbMtime            = 0x2C
	sbWtime            = 0x30
	sbMagic            = 0x38
	sbLastCheck        = 0x40
	sbInodeSize        = 0x58
	sbBlockGroupNr     = 0x5A
	sbFeatureIncompat  = 0x60
	sbFeatureROCompat  = 0x64
	sbUUID             = 0x68
	sbHashSeed         = 0xEC
	sbDescSize         = 0xFE
	sbMkfsTime         = 0x108
	sbBlocksCountHi    = 0x150
	sbFirstErrorTime   = 0x198
	sbLastErrorTime    = 0x1CC
	sbChecksumSeed     = 0x270
	sbTimeHi           = 0x274 // wtime, mtime, mkfs_time, lastcheck, first/last error
	sbChecksum         = 0x3FC
	incompat64bit      = 0x80
	incompatCsumSeed   = 0x2000
	roCompatMetadataCS = 0x400
)

func normalize(f *os.File, off int64, modTime time.Time) error {
	t := uint32(max(modTime.Unix(), 0))
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, off+1024); err != nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint16(sb[sbMagic:]) != 0xEF53 {
		return fmt.Errorf("no ext4 superblock after formatting")
	}
	bs := int64(1024) << le.Uint32(sb[sbLogBlockSize:])
	bpg := int64(le.Uint32(sb[sbBlocksPerGroup:]))
	ipg := int64(le.Uint32(sb[sbInodesPerGroup:]))
	inodeSize := int64(le.Uint16(sb[sbInodeSize:]))
	first := int64(le.Uint32(sb[sbFirstDataBlock:]))
	blocks := int64(le.Uint32(sb[sbBlocksCountLo:]))
	incompat := le.Uint32(sb[sbFeatureIncompat:])
	if incompat&incompat64bit != 0 {
		blocks |= int64(le.Uint32(sb[sbBlocksCountHi:])) << 32
	}
	csum := le.Uint32(sb[sbFeatureROCompat:])&roCompatMetadataCS != 0
	seed := crc32c(^uint32(0), sb[sbUUID:sbUUID+16])
	if incompat&incompatCsumSeed != 0 {
		seed = le.Uint32(sb[sbChecksumSeed:])
	}
	// A directory hash seed derived from the UUID instead of a random one.
	// No directory is hash-indexed yet, so nothing depends on the old one.
	hs := sha256.Sum256(sb[sbUUID : sbUUID+16])
	uuidSeed := hs[:16]

	// Every superblock copy: the primary at byte 1024 and the backups at
	// the start of their groups. go-diskfs leaves a backup's group number
	// 0; it gets its group's, as mke2fs writes it.
	groups := (blocks - first + bpg - 1) / bpg
	for g := int64(0); g < groups; g++ {
		pos := off + 1024
		if g > 0 {
			pos = off + (first+g*bpg)*bs
		}
		b := make([]byte, 1024)
		if _, err := f.ReadAt(b, pos); err != nil {
			return err
		}
		if nr := int64(le.Uint16(b[sbBlockGroupNr:])); le.Uint16(b[sbMagic:]) != 0xEF53 || nr != g && nr != 0 ||
			string(b[sbUUID:sbUUID+16]) != string(sb[sbUUID:sbUUID+16]) {
			continue
		}
		le.PutUint16(b[sbBlockGroupNr:], uint16(g))
		for _, o := range []int{sbMtime, sbWtime, sbLastCheck, sbMkfsTime} {
			le.PutUint32(b[o:], t)
		}
		le.PutUint32(b[sbFirstErrorTime:], 0)
		le.PutUint32(b[sbLastErrorTime:], 0)
		for i := 0; i < 6; i++ {
			b[sbTimeHi+i] = 0
		}
		copy(b[sbHashSeed:], uuidSeed)
		if csum {
			le.PutUint32(b[sbChecksum:], crc32c(^uint32(0), b[:sbChecksum]))
		}
		if _, err := f.WriteAt(b, pos); err != nil {
			return err
		}
	}

	// The inodes mkfs created all live in group 0's inode table.
	descSize := int64(32)
	if incompat&incompat64bit != 0 {
		descSize = int64(le.Uint16(sb[sbDescSize:]))
	}
	gdt := make([]byte, descSize)
	gdtPos := off + (first+1)*bs
	if _, err := f.ReadAt(gdt, gdtPos); err != nil {
		return err
	}
	table := int64(le.Uint32(gdt[0x08:]))
	if descSize >= 64 {
		table |= int64(le.Uint32(gdt[0x28:])) << 32
	}
	buf := make([]byte, ipg*inodeSize)
	if _, err := f.ReadAt(buf, off+table*bs); err != nil && err != io.EOF {
		return err
	}
	for i := int64(0); i < ipg; i++ {
		ino := buf[i*inodeSize : (i+1)*inodeSize]
		if le.Uint16(ino[0:]) == 0 && le.Uint16(ino[0x1A:]) == 0 { // no mode, no links: unused
			continue
		}
		normalizeInode(ino, uint32(i+1), t, seed, csum)
	}
	if _, err := f.WriteAt(buf, off+table*bs); err != nil {
		return err
	}
	return nil
}

// normalizeInode sets an inode's timestamps to t and recomputes its
// checksum.
func normalizeInode(ino []byte, number, t, seed uint32, csum bool) {
	le := binary.LittleEndian
	for _, o := range []int{0x08, 0x0C, 0x10} { // atime, ctime, mtime
		le.PutUint32(ino[o:], t)
	}
	extra := 0
	if len(ino) > 128 {
		extra = int(le.Uint16(ino[0x80:]))
	}
	// A field past the first 128 bytes exists if i_extra_isize covers it.
	has := func(o, size int) bool { return len(ino) > 128 && o+size <= 128+extra }
	for _, o := range []int{0x84, 0x88, 0x8C, 0x94} { // ctime, mtime, atime, crtime extra
		if has(o, 4) {
			le.PutUint32(ino[o:], 0)
		}
	}
	if has(0x90, 4) {
		le.PutUint32(ino[0x90:], t) // crtime
	}
	if !csum {
		return
	}
	le.PutUint16(ino[0x7C:], 0)
	hasHi := has(0x82, 2)
	if hasHi {
		le.PutUint16(ino[0x82:], 0)
	}
	var n [4]byte
	le.PutUint32(n[:], number)
	c := crc32c(seed, n[:])
	le.PutUint32(n[:], le.Uint32(ino[0x64:])) // generation
	c = crc32c(c, n[:])
	c = crc32c(c, ino)
	le.PutUint16(ino[0x7C:], uint16(c))
	if hasHi {
		le.PutUint16(ino[0x82:], uint16(c>>16))
	}
}
