package disk

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// GUID is a GPT GUID in its on-disk byte order (the first three fields
// little-endian).
type GUID [16]byte

// ParseGUID parses the textual form, e.g.
// "C12A7328-F81F-11D2-BA4B-00A0C93EC93B".
func ParseGUID(s string) (GUID, error) {
	var g GUID
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(s) != 36 {
		return g, fmt.Errorf("invalid GUID %q", s)
	}
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return g, fmt.Errorf("invalid GUID %q: %w", s, err)
	}
	// time_low, time_mid, time_hi are stored little-endian.
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g, nil
}

func mustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// String returns the canonical upper-case form.
func (g GUID) String() string {
	return strings.ToUpper(fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%x-%x",
		g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8:10], g[10:]))
}

// Partition type GUIDs.
var (
	TypeESP       = mustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	TypeLinuxData = mustGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
	typeRoot      = map[string]GUID{
		"amd64": mustGUID("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"), // Linux root (x86-64)
		"arm64": mustGUID("B921B045-1DF0-41C3-AF44-4C6F280D3FAE"), // Linux root (ARM64)
		"386":   mustGUID("44479540-F297-41B2-9AF7-D131D5F0458A"), // Linux root (x86)
	}
)

// RootType is the type of root partition A for goarch; gokrazy uses the
// arm64 type for other architectures too.
func RootType(goarch string) GUID {
	if g, ok := typeRoot[goarch]; ok {
		return g
	}
	return typeRoot["arm64"]
}

// ID identifies a disk: the hostname hash that all its GUIDs and its MBR
// signature carry, and the type of its root partition (the architecture).
type ID struct {
	Hash     uint32 // HostHash of the hostname, e.g. 0x4f9f2cab for "hello"
	RootType GUID   // e.g. the Linux root (x86-64) type
}

// NewID is the identity of a disk for hostname and goarch.
func NewID(hostname, goarch string) ID { return ID{HostHash(hostname), RootType(goarch)} }

// DiskGUID and PartGUID follow gokrazy's scheme:
// 60c24cc1-f3f9-427a-8199-<HostHash>00<nn>, with nn = 00 for the disk.
func DiskGUID(hostname string) GUID { return PartGUID(hostname, 0) }

// PartGUID is partition n's unique GUID; PartGUID(host, 1) is what the
// kernel command line's root=PARTUUID= names.
func PartGUID(hostname string, n int) GUID { return ID{Hash: HostHash(hostname)}.PartGUID(n) }

// PartGUID is partition n's GUID (0 for the disk).
func (id ID) PartGUID(n int) GUID {
	return mustGUID(fmt.Sprintf("60C24CC1-F3F9-427A-8199-%08X00%02X", id.Hash, n))
}

// ReadID reads the identity of a gokrazy disk (image): the MBR signature
// and the type of partition 2 in the primary GPT.
func ReadID(r io.ReaderAt) (ID, error) {
	var id ID
	b := make([]byte, 3*SectorSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return id, fmt.Errorf("reading the partition table: %w", err)
	}
	if b[510] != 0x55 || b[511] != 0xAA || string(b[SectorSize:SectorSize+8]) != "EFI PART" {
		return id, fmt.Errorf("not a GPT disk")
	}
	id.Hash = binary.LittleEndian.Uint32(b[440:])
	copy(id.RootType[:], b[2*SectorSize+128:2*SectorSize+128+16])
	if id.PartGUID(1) != GUID(b[2*SectorSize+16:2*SectorSize+32]) {
		return id, fmt.Errorf("not a gokrazy disk: partition 1 is not %s", id.PartGUID(1))
	}
	return id, nil
}

// partNames are gok's partition names.
var partNames = [4]string{"Microsoft basic data", "Linux filesystem", "Linux filesystem", "Linux filesystem"}

// entries returns the 128 partition entries (16 KiB).
func (l *Layout) entries(id ID) []byte {
	b := make([]byte, 128*128)
	types := [4]GUID{TypeESP, id.RootType, TypeLinuxData, TypeLinuxData}
	for i, p := range l.Parts {
		e := b[i*128 : (i+1)*128]
		copy(e[0:16], types[i][:])
		g := id.PartGUID(i + 1)
		copy(e[16:32], g[:])
		binary.LittleEndian.PutUint64(e[32:], uint64(p.Start))
		binary.LittleEndian.PutUint64(e[40:], uint64(p.Start+p.Sectors-1))
		for j, u := range utf16.Encode([]rune(partNames[i])) {
			binary.LittleEndian.PutUint16(e[56+2*j:], u)
		}
	}
	return b
}

// gptHeader returns one header sector.
func (l *Layout) gptHeader(id ID, entries []byte, primary bool) []byte {
	my, alt, entryLBA := int64(1), l.Sectors-1, int64(2)
	if !primary {
		my, alt, entryLBA = l.Sectors-1, 1, l.Sectors-gptSectors
	}
	h := make([]byte, SectorSize)
	le := binary.LittleEndian
	copy(h[0:8], "EFI PART")
	le.PutUint32(h[8:], 0x00010000) // revision 1.0
	le.PutUint32(h[12:], 92)        // header size
	le.PutUint64(h[24:], uint64(my))
	le.PutUint64(h[32:], uint64(alt))
	le.PutUint64(h[40:], 2+gptSectors-1)                 // first usable LBA: 34
	le.PutUint64(h[48:], uint64(l.Sectors-gptSectors-1)) // last usable LBA
	g := id.PartGUID(0)
	copy(h[56:72], g[:])
	le.PutUint64(h[72:], uint64(entryLBA))
	le.PutUint32(h[80:], 128) // entries
	le.PutUint32(h[84:], 128) // entry size
	le.PutUint32(h[88:], crc32.ChecksumIEEE(entries))
	le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
	return h
}

// PrimaryGPT returns LBA 1 to 33: the header and the partition entries.
func (l *Layout) PrimaryGPT(id ID) []byte {
	e := l.entries(id)
	return append(l.gptHeader(id, e, true), e...)
}

// BackupGPT returns the last 33 sectors of the disk: the entries, then the
// header.
func (l *Layout) BackupGPT(id ID) []byte {
	e := l.entries(id)
	return append(e, l.gptHeader(id, e, false)...)
}

// WriteTables writes the hybrid MBR and both GPTs to a disk (image) of
// the layout's size.
func (l *Layout) WriteTables(w io.WriterAt, id ID) error {
	mbr := l.HybridMBR(id)
	if _, err := w.WriteAt(mbr[:], 0); err != nil {
		return fmt.Errorf("writing the MBR: %w", err)
	}
	if _, err := w.WriteAt(l.PrimaryGPT(id), SectorSize); err != nil {
		return fmt.Errorf("writing the GPT: %w", err)
	}
	if _, err := w.WriteAt(l.BackupGPT(id), (l.Sectors-gptSectors)*SectorSize); err != nil {
		return fmt.Errorf("writing the backup GPT: %w", err)
	}
	return nil
}
