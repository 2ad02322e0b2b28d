// Package biosmsg makes the boot code homederp puts where a legacy BIOS
// looks for it (the MBR, the FAT boot sector): it prints why this disk
// does not boot that way, then halts. homederp boots through UEFI or the
// Raspberry Pi firmware; gok's BIOS loader is GPL-3 and out of scope.
package biosmsg

// Code returns 16-bit real-mode code that, loaded at address addr,
// prints msg with BIOS teletype output and halts, followed by msg and a
// NUL. It is 24 bytes of code; the caller checks that it fits.
func Code(addr uint16, msg string) []byte {
	const codeLen = 24
	msgAddr := addr + codeLen
	code := []byte{
		0x31, 0xC0, // xor ax, ax
		0x8E, 0xD8, // mov ds, ax
		0x31, 0xDB, // xor bx, bx (page 0)
		0xBE, byte(msgAddr), byte(msgAddr >> 8), // mov si, msg
		0xB4, 0x0E, // 9: mov ah, 0x0e
		0xAC,       // lodsb
		0x84, 0xC0, // test al, al
		0x74, 0x04, // jz 20
		0xCD, 0x10, // int 0x10
		0xEB, 0xF5, // jmp 9
		0xFA,       // 20: cli
		0xF4,       // 21: hlt
		0xEB, 0xFD, // jmp 21
	}
	if len(code) != codeLen {
		panic("biosmsg: code length changed; fix codeLen")
	}
	return append(code, append([]byte(msg), 0)...)
}
