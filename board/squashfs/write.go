package squashfs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	iofs "io/fs"
	"math"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// On-disk constants of SquashFS 4.0 (linux/fs/squashfs/squashfs_fs.h).
const (
	magic          = 0x73717368
	blockSize      = 128 << 10
	blockLog       = 17
	superblockSize = 96
	compZlib       = 1
	flagNoFrag     = 0x0010
	flagNoXattr    = 0x0200
	invalidBlock   = math.MaxUint64
	noFragment     = math.MaxUint32
	noXattr        = math.MaxUint32
	uncompressed   = 1 << 24 // in a data block size: stored as is
	metaUncomp     = 1 << 15 // in a metadata block header: stored as is
	metaBlockSize  = 8192
	maxDirEntries  = 256 // per directory header
	padTo          = 4096

	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeLDir    = 8
)

// WriteTo writes the file system to w, which must be positioned at the
// start of the file system, and returns its length (a multiple of 4 KiB).
func (fs *FS) WriteTo(w io.WriteSeeker, opts Options) (int64, error) {
	mtime := uint32(0)
	if t := opts.ModTime.Unix(); t > 0 && t <= math.MaxUint32 {
		mtime = uint32(t)
	}
	start, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}

	// Inode numbers in write order: children before their directory, so
	// the root is the last one.
	var count uint32
	var number func(n *node)
	number = func(n *node) {
		for _, c := range n.sorted() {
			number(c)
		}
		count++
		n.ino = count
	}
	number(fs.root)

	// Data blocks right after the superblock.
	if _, err := w.Seek(start+superblockSize, io.SeekStart); err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	pos := uint64(superblockSize)
	var writeData func(n *node) error
	writeData = func(n *node) error {
		for _, c := range n.sorted() {
			if c.mode.IsDir() {
				if err := writeData(c); err != nil {
					return err
				}
				continue
			}
			if !c.mode.IsRegular() {
				continue
			}
			c.dataStart = pos
			sizes, written, err := writeFile(bw, c)
			if err != nil {
				return err
			}
			c.blockSizes = sizes
			pos += written
		}
		return nil
	}
	if err := writeData(fs.root); err != nil {
		return 0, err
	}

	// Inode and directory tables, built children first.
	var inodes, dirs metaWriter
	var writeTables func(n, parent *node) error
	writeTables = func(n, parent *node) error {
		for _, c := range n.sorted() {
			if c.mode.IsDir() {
				if err := writeTables(c, n); err != nil {
					return err
				}
				continue
			}
			c.ref = inodes.ref()
			b, err := leafInode(c, mtime)
			if err != nil {
				return err
			}
			inodes.write(b)
		}
		dirBlock, dirOffset := dirs.pos()
		listing, err := dirListing(n)
		if err != nil {
			return err
		}
		dirs.write(listing)
		parentIno := count + 1 // the root's parent, as mksquashfs writes it
		if parent != nil {
			parentIno = parent.ino
		}
		nlink := uint32(2)
		for _, c := range n.children {
			if c.mode.IsDir() {
				nlink++
			}
		}
		n.ref = inodes.ref()
		inodes.write(dirInode(n, mtime, dirBlock, dirOffset, uint32(len(listing))+3, nlink, parentIno))
		return nil
	}
	if err := writeTables(fs.root, nil); err != nil {
		return 0, err
	}

	inodeTableStart := pos
	it := inodes.finish()
	dirTableStart := inodeTableStart + uint64(len(it))
	dt := dirs.finish()
	// The id table: one metadata block holding uid/gid 0, then the index
	// of its metadata blocks, which is what the superblock points at.
	idBlockPos := dirTableStart + uint64(len(dt))
	var ids metaWriter
	ids.write([]byte{0, 0, 0, 0})
	idBlock := ids.finish()
	idTableStart := idBlockPos + uint64(len(idBlock))
	idIndex := binary.LittleEndian.AppendUint64(nil, idBlockPos)
	bytesUsed := idTableStart + uint64(len(idIndex))

	for _, b := range [][]byte{it, dt, idBlock, idIndex} {
		if _, err := bw.Write(b); err != nil {
			return 0, err
		}
	}
	total := (bytesUsed + padTo - 1) / padTo * padTo
	if _, err := bw.Write(make([]byte, total-bytesUsed)); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}

	sb := make([]byte, superblockSize)
	le := binary.LittleEndian
	le.PutUint32(sb[0:], magic)
	le.PutUint32(sb[4:], count)
	le.PutUint32(sb[8:], mtime)
	le.PutUint32(sb[12:], blockSize)
	le.PutUint32(sb[16:], 0) // fragments
	le.PutUint16(sb[20:], compZlib)
	le.PutUint16(sb[22:], blockLog)
	le.PutUint16(sb[24:], flagNoFrag|flagNoXattr)
	le.PutUint16(sb[26:], 1) // ids
	le.PutUint16(sb[28:], 4) // version 4.0
	le.PutUint16(sb[30:], 0)
	le.PutUint64(sb[32:], fs.root.ref)
	le.PutUint64(sb[40:], bytesUsed)
	le.PutUint64(sb[48:], idTableStart)
	le.PutUint64(sb[56:], invalidBlock) // xattr id table
	le.PutUint64(sb[64:], inodeTableStart)
	le.PutUint64(sb[72:], dirTableStart)
	le.PutUint64(sb[80:], invalidBlock) // fragment table
	le.PutUint64(sb[88:], invalidBlock) // export table
	if _, err := w.Seek(start, io.SeekStart); err != nil {
		return 0, err
	}
	if _, err := w.Write(sb); err != nil {
		return 0, err
	}
	if _, err := w.Seek(start+int64(total), io.SeekStart); err != nil {
		return 0, err
	}
	return int64(total), nil
}

// writeFile compresses the file's blocks (in parallel, written in order)
// and returns their on-disk size words and the bytes written.
//
// One block per core is being compressed at any time, and the next is
// read and started as soon as one finishes, whichever it is; finished
// blocks wait in a queue of twice as many until those before them are
// written. (Waiting for a whole window of blocks instead leaves a core
// idle whenever one block of the window is slower to compress than the
// others, which at level 8 is often.)
func writeFile(w io.Writer, n *node) ([]uint32, uint64, error) {
	if n.size == 0 {
		return nil, 0, nil
	}
	if n.size > math.MaxUint32 {
		return nil, 0, fmt.Errorf("squashfs: %s: files over 4 GiB are not supported", n.name)
	}
	rc, err := n.open()
	if err != nil {
		return nil, 0, fmt.Errorf("squashfs: opening %s: %w", n.name, err)
	}
	defer rc.Close()
	nblocks := int((n.size + blockSize - 1) / blockSize)
	sizes := make([]uint32, nblocks)
	var written uint64

	procs := runtime.GOMAXPROCS(0)
	busy := make(chan struct{}, procs) // a token for each block being compressed
	var queue []chan compressed        // started blocks in file order, not yet written
	done := 0                          // blocks written
	writeNext := func() error {
		c := <-queue[0]
		queue = queue[1:]
		if c.err != nil {
			return c.err
		}
		b, size := c.out, uint32(len(c.out))
		if len(b) >= len(c.raw) {
			b, size = c.raw, uint32(len(c.raw))|uncompressed
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		sizes[done] = size
		done++
		written += uint64(len(b))
		return nil
	}
	var readTotal int64
	for i := range nblocks {
		raw := make([]byte, min(int64(blockSize), n.size-int64(i)*blockSize))
		m, err := io.ReadFull(rc, raw)
		readTotal += int64(m)
		if err != nil {
			return nil, 0, fmt.Errorf("squashfs: %s: got %d bytes, declared %d (did it change?): %w", n.name, readTotal, n.size, err)
		}
		if len(queue) == 2*procs {
			if err := writeNext(); err != nil {
				return nil, 0, err
			}
		}
		c := make(chan compressed, 1) // never blocks a goroutine left behind by an error
		queue = append(queue, c)
		busy <- struct{}{}
		go func() {
			out, err := compress(raw)
			<-busy
			c <- compressed{raw, out, err}
		}()
	}
	for len(queue) > 0 {
		if err := writeNext(); err != nil {
			return nil, 0, err
		}
	}
	if extra, _ := rc.Read(make([]byte, 1)); extra > 0 {
		return nil, 0, fmt.Errorf("squashfs: %s: longer than the declared %d bytes (did it change?)", n.name, n.size)
	}
	return sizes, written, nil
}

// compressed is one data block: as read, and compressed.
type compressed struct {
	raw, out []byte
	err      error
}

// zlibLevel is klauspost/compress's level 8: the bytes of the standard
// library's default level at the speed of its fastest, on the programs of
// an image (BenchmarkWrite; BENCHMARKS.md). Its encoder is pure Go, so an
// arm64 and an amd64 build host write the same bytes.
const zlibLevel = 8

// zlibWriters keeps one encoder per goroutine that needs one: an encoder
// at this level carries a few hundred KiB of tables, too many to allocate
// for every 128 KiB block.
var zlibWriters = sync.Pool{New: func() any {
	zw, err := zlib.NewWriterLevel(nil, zlibLevel)
	if err != nil {
		panic(err) // only for a level out of range
	}
	return zw
}}

func compress(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zlibWriters.Get().(*zlib.Writer)
	defer zlibWriters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func header(typ uint16, n *node, mtime uint32) []byte {
	mode := uint16(n.mode.Perm())
	if n.mode&iofs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if n.mode&iofs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if n.mode&iofs.ModeSticky != 0 {
		mode |= 0o1000
	}
	// Only permission bits: the inode type says what the file is, and the
	// kernel rejects a mode that carries file type bits too (as
	// mksquashfs never writes them).
	b := make([]byte, 16)
	le := binary.LittleEndian
	le.PutUint16(b[0:], typ)
	le.PutUint16(b[2:], mode)
	le.PutUint16(b[4:], 0) // uid index: id 0 (root)
	le.PutUint16(b[6:], 0) // gid index
	le.PutUint32(b[8:], mtime)
	le.PutUint32(b[12:], n.ino)
	return b
}

// leafInode encodes a regular file or symlink inode.
func leafInode(n *node, mtime uint32) ([]byte, error) {
	le := binary.LittleEndian
	if n.mode&iofs.ModeSymlink != 0 {
		b := header(typeSymlink, n, mtime)
		b = le.AppendUint32(b, 1) // nlink
		b = le.AppendUint32(b, uint32(len(n.target)))
		return append(b, n.target...), nil
	}
	if n.dataStart > math.MaxUint32 {
		return nil, fmt.Errorf("squashfs: %s: data beyond 4 GiB", n.name)
	}
	b := header(typeFile, n, mtime)
	b = le.AppendUint32(b, uint32(n.dataStart))
	b = le.AppendUint32(b, noFragment)
	b = le.AppendUint32(b, 0) // offset within the fragment
	b = le.AppendUint32(b, uint32(n.size))
	for _, s := range n.blockSizes {
		b = le.AppendUint32(b, s)
	}
	return b, nil
}

// dirInode encodes a directory inode: the basic form when its listing
// fits the 16-bit size field, the extended form (without an index)
// otherwise.
func dirInode(n *node, mtime, block uint32, offset uint16, fileSize, nlink, parent uint32) []byte {
	le := binary.LittleEndian
	if fileSize <= math.MaxUint16 {
		b := header(typeDir, n, mtime)
		b = le.AppendUint32(b, block)
		b = le.AppendUint32(b, nlink)
		b = le.AppendUint16(b, uint16(fileSize))
		b = le.AppendUint16(b, offset)
		return le.AppendUint32(b, parent)
	}
	b := header(typeLDir, n, mtime)
	b = le.AppendUint32(b, nlink)
	b = le.AppendUint32(b, fileSize)
	b = le.AppendUint32(b, block)
	b = le.AppendUint32(b, parent)
	b = le.AppendUint16(b, 0) // index count
	b = le.AppendUint16(b, offset)
	return le.AppendUint32(b, noXattr)
}

// dirListing encodes a directory's entries: runs of at most 256 entries
// whose inodes start in the same metadata block, each run behind a header
// with that block and a base inode number.
func dirListing(n *node) ([]byte, error) {
	le := binary.LittleEndian
	var out []byte
	children := n.sorted()
	for i := 0; i < len(children); {
		block := uint32(children[i].ref >> 16)
		base := children[i].ino
		j := i
		for j < len(children) && j-i < maxDirEntries && uint32(children[j].ref>>16) == block {
			d := int64(children[j].ino) - int64(base)
			if d < math.MinInt16 || d > math.MaxInt16 {
				break
			}
			j++
		}
		out = le.AppendUint32(out, uint32(j-i-1))
		out = le.AppendUint32(out, block)
		out = le.AppendUint32(out, base)
		for _, c := range children[i:j] {
			typ := uint16(typeFile)
			switch {
			case c.mode.IsDir():
				typ = typeDir
			case c.mode&iofs.ModeSymlink != 0:
				typ = typeSymlink
			}
			out = le.AppendUint16(out, uint16(c.ref&0xFFFF))
			out = le.AppendUint16(out, uint16(int16(int64(c.ino)-int64(base))))
			out = le.AppendUint16(out, typ)
			out = le.AppendUint16(out, uint16(len(c.name)-1))
			out = append(out, c.name...)
		}
		i = j
	}
	return out, nil
}
