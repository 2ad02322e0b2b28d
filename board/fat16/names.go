package fat16

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
)

// NTRes flags (Windows NT and Linux honour them): the base name or the
// extension of an 8.3 name is displayed in lower case, so "cmdline.txt"
// needs no long-name entry.
const (
	ntLowerBase = 0x08
	ntLowerExt  = 0x10
)

// charsPerLFN is how many UTF-16 code units one long-name entry holds.
const charsPerLFN = 13

func validName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("invalid name %q", name)
	case len(utf16.Encode([]rune(name))) > 255:
		return fmt.Errorf("name %q longer than 255 characters", name)
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		return fmt.Errorf("name %q ends in a dot or space", name)
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`"*/:<>?\|`, r) || r == 0x7f {
			return fmt.Errorf("name %q contains %q, which FAT does not allow", name, r)
		}
	}
	return nil
}

// shortChar reports whether c may appear in an 8.3 name as is.
func shortChar(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'()-@^_`{}~", c) >= 0
}

// exact83 returns the 11-byte short name and NTRes flags when name can be
// stored as a plain 8.3 entry without a long name: at most 8+3 valid
// characters, and each part all upper or all lower case.
func exact83(name string) (short [11]byte, nt byte, ok bool) {
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		base, ext = name[:i], name[i+1:]
	}
	if base == "" || len(base) > 8 || len(ext) > 3 || strings.Contains(base, ".") {
		return short, 0, false
	}
	partCase := func(s string) (lower bool, ok bool) {
		hasLower, hasUpper := false, false
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case 'a' <= c && c <= 'z':
				hasLower = true
			case 'A' <= c && c <= 'Z':
				hasUpper = true
			case !shortChar(c):
				return false, false
			}
		}
		return hasLower, !(hasLower && hasUpper)
	}
	lb, okb := partCase(base)
	le, oke := partCase(ext)
	if !okb || !oke {
		return short, 0, false
	}
	if lb {
		nt |= ntLowerBase
	}
	if le {
		nt |= ntLowerExt
	}
	if ext == "" {
		// gokrazy's reader matches a name without an extension only if
		// the stored bytes equal it exactly ("loader", "entries"), as
		// gokrazy's own writer stores them; so keep the case.
		copy(short[:], pad(base, 8))
	} else {
		copy(short[:], pad(strings.ToUpper(base), 8))
	}
	copy(short[8:], pad(strings.ToUpper(ext), 3))
	return short, nt, true
}

func pad(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }

// basis is the upper-case, sanitized base and extension a numeric-tail
// short name is made from, as Windows makes them: "gokrazy.conf" gives
// "GOKRAZY" and "CON", so the first such name is GOKRAZ~1.CON, which is
// what gokrazy's reader looks for.
func basis(name string) (base, ext string) {
	up := strings.ToUpper(strings.ReplaceAll(name, " ", ""))
	up = strings.TrimLeft(up, ".")
	b, e := up, ""
	if i := strings.LastIndexByte(up, '.'); i >= 0 {
		b, e = up[:i], up[i+1:]
	}
	clean := func(s string, n int) string {
		var sb strings.Builder
		for i := 0; i < len(s) && sb.Len() < n; i++ {
			c := s[i]
			switch {
			case c == '.':
				continue
			case shortChar(c):
				sb.WriteByte(c)
			default:
				sb.WriteByte('_')
			}
		}
		return sb.String()
	}
	return clean(b, 8), clean(e, 3)
}

// assignNames gives every entry of dir (recursively) a unique short name
// and decides which need long-name entries.
func assignNames(dir *node) error {
	used := map[[11]byte]bool{}
	children := dir.sorted()
	// Exact 8.3 names first, so that a generated ~N name never takes a
	// name another file really has.
	for _, c := range children {
		if short, nt, ok := exact83(c.name); ok {
			if used[short] {
				return fmt.Errorf("fat16: %q collides with another name", c.name)
			}
			c.short, c.ntCase, c.lfn = short, nt, false
			used[short] = true
		}
	}
	for _, c := range children {
		if _, _, ok := exact83(c.name); ok {
			continue
		}
		base, ext := basis(c.name)
		if base == "" {
			base = "_"
		}
		found := false
		for n := 1; n < 1000000; n++ {
			tail := "~" + strconv.Itoa(n)
			b := base
			if len(b)+len(tail) > 8 {
				b = b[:8-len(tail)]
			}
			var short [11]byte
			copy(short[:], pad(b+tail, 8))
			copy(short[8:], pad(ext, 3))
			if !used[short] {
				c.short, c.lfn = short, true
				used[short] = true
				found = true
				break
			}
		}
		if !found {
			return errors.New("fat16: too many similar names")
		}
	}
	for _, c := range children {
		if c.dir {
			if err := assignNames(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func lfnSlots(name string) int {
	return ceilDiv(len(utf16.Encode([]rune(name))), charsPerLFN)
}

func shortChecksum(short [11]byte) byte {
	var sum byte
	for _, c := range short {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// lfnEntries returns the long-name entries for name, in the order they
// precede the short entry on disk (last part first).
func lfnEntries(name string, short [11]byte) [][dirEntrySize]byte {
	units := utf16.Encode([]rune(name))
	n := lfnSlots(name)
	// Pad: one 0x0000 terminator if there is room, then 0xFFFF.
	padded := make([]uint16, n*charsPerLFN)
	for i := range padded {
		switch {
		case i < len(units):
			padded[i] = units[i]
		case i == len(units):
			padded[i] = 0
		default:
			padded[i] = 0xFFFF
		}
	}
	sum := shortChecksum(short)
	out := make([][dirEntrySize]byte, n)
	for seq := 1; seq <= n; seq++ {
		var e [dirEntrySize]byte
		e[0] = byte(seq)
		if seq == n {
			e[0] |= 0x40 // last long entry
		}
		e[11] = 0x0F // ATTR_LONG_NAME
		e[13] = sum
		chars := padded[(seq-1)*charsPerLFN : seq*charsPerLFN]
		offsets := []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
		for i, off := range offsets {
			e[off] = byte(chars[i])
			e[off+1] = byte(chars[i] >> 8)
		}
		out[n-seq] = e
	}
	return out
}
