package squashfs

import "encoding/binary"

// metaWriter builds a metadata table (inodes, directories, ids): a
// sequence of blocks of at most 8 KiB, each stored compressed when that is
// smaller, behind a 16-bit length header. Entries may straddle blocks.
type metaWriter struct {
	out []byte // finished blocks, as on disk
	cur []byte // the block being filled, uncompressed
}

// pos is where the next byte goes: the on-disk offset of the current
// block within the table, and the offset within the uncompressed block.
func (m *metaWriter) pos() (block uint32, offset uint16) {
	return uint32(len(m.out)), uint16(len(m.cur))
}

// ref is pos as an inode reference.
func (m *metaWriter) ref() uint64 {
	b, o := m.pos()
	return uint64(b)<<16 | uint64(o)
}

func (m *metaWriter) write(b []byte) {
	for len(b) > 0 {
		n := min(metaBlockSize-len(m.cur), len(b))
		m.cur = append(m.cur, b[:n]...)
		b = b[n:]
		if len(m.cur) == metaBlockSize {
			m.flush()
		}
	}
}

func (m *metaWriter) flush() {
	if len(m.cur) == 0 {
		return
	}
	data, err := compress(m.cur)
	hdr := uint16(len(data))
	if err != nil || len(data) >= len(m.cur) {
		data, hdr = m.cur, uint16(len(m.cur))|metaUncomp
	}
	m.out = binary.LittleEndian.AppendUint16(m.out, hdr)
	m.out = append(m.out, data...)
	m.cur = m.cur[:0]
}

// finish flushes the last block and returns the table.
func (m *metaWriter) finish() []byte {
	m.flush()
	return m.out
}
