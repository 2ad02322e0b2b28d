package biosmsg

import (
	"encoding/binary"
	"testing"
)

func TestCodePointsAtMessage(t *testing.T) {
	for _, addr := range []uint16{0x7C00, 0x7C3E} {
		const msg = "hello\r\n"
		b := Code(addr, msg)
		// mov si, imm16 is BE followed by the message address.
		if b[6] != 0xBE {
			t.Fatalf("Code(%#x): byte 6 is %#x, want mov si (0xBE)", addr, b[6])
		}
		off := int(binary.LittleEndian.Uint16(b[7:9]) - addr)
		if got := string(b[off : off+len(msg)]); got != msg {
			t.Errorf("Code(%#x): mov si points at %q, want %q", addr, got, msg)
		}
		if b[len(b)-1] != 0 {
			t.Errorf("Code(%#x): message not NUL-terminated", addr)
		}
	}
}
