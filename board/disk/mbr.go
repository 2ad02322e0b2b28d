package disk

import (
	"encoding/binary"

	"github.com/homederp/homederp/board/internal/biosmsg"
)

// BootCodeSize is how much of LBA 0 gokrazy's /update/mbr handler is sent:
// the boot code and the disk signature, not the partition entries.
const BootCodeSize = 446

// HybridMBR returns LBA 0: gokrazy's hybrid MBR.
//
//   - Entry 1 is the boot FAT, type 0x0C (FAT32 LBA, which the Pi's ROM
//     accepts for FAT16 too), marked active: the Raspberry Pi boot ROM
//     reads only the MBR and boots from this partition.
//   - Entry 2 is the protective 0xEE entry, covering only LBA 1 to 8191 (not
//     the whole disk), so UEFI firmware finds the GPT.
//   - Bytes 440-443 are the disk signature, the hostname hash.
//
// The first 440 bytes hold no loader (gok's legacy-BIOS loader is GPL-3
// assembly, out of scope): on a BIOS they print that the disk boots
// through UEFI and halt. x86 boxes must boot in UEFI mode.
func (l *Layout) HybridMBR(id ID) [SectorSize]byte {
	var b [SectorSize]byte
	copy(b[:], biosStub)
	binary.LittleEndian.PutUint32(b[440:], id.Hash)
	boot := l.Part(Boot)
	mbrEntry(b[446:462], 0x80, 0x0C, [3]byte{0xFE, 0xFF, 0xFF}, uint32(boot.Start), uint32(boot.Sectors))
	mbrEntry(b[462:478], 0x00, 0xEE, [3]byte{0x00, 0x02, 0x00}, 1, FirstLBA-1)
	b[510], b[511] = 0x55, 0xAA
	return b
}

func mbrEntry(e []byte, status, typ byte, chsFirst [3]byte, start, sectors uint32) {
	e[0] = status
	copy(e[1:4], chsFirst[:])
	e[4] = typ
	copy(e[5:8], []byte{0xFE, 0xFF, 0xFF}) // CHS last: use LBA
	binary.LittleEndian.PutUint32(e[8:], start)
	binary.LittleEndian.PutUint32(e[12:], sectors)
}

// biosStub is what a legacy BIOS runs from the MBR (loaded at 0x7C00).
var biosStub = biosmsg.Code(0x7C00, "homederp boots through UEFI: switch this machine's firmware to UEFI boot.\r\n")
