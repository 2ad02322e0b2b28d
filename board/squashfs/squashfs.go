// Package squashfs writes the read-only root file system of a gokrazy
// image: SquashFS 4.0, as the Linux kernel mounts it.
//
// It writes only what a gokrazy root needs, and writes it the way the
// risky details demand:
//
//   - zlib compression (every kernel that gokrazy supports has it, and the
//     Raspberry Pi kernels have no zstd) with github.com/klauspost/compress
//     at level 8: 10% fewer bytes than the standard library's fastest
//     level (which gokrazy uses) at about its speed, where the standard
//     library's default level, for the same bytes, takes two to three
//     times as long (BenchmarkWrite; BENCHMARKS.md); 128 KiB blocks;
//   - every file, directory and symlink owned by root (one id, 0);
//   - modes exactly as given: the root directory is 0755 (a 0700 root
//     breaks daemons that drop privileges, such as gokrazy's ntp);
//   - symlinks stored as symlinks, whatever their target, e.g.
//     /var -> /perm/var (which does not exist at build time);
//   - no fragments (each file's tail is its own short block), no extended
//     attributes, no export table;
//   - entries sorted and every timestamp set to one given time, so the same
//     tree gives the same bytes.
package squashfs

import (
	"bytes"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// FS is the tree of a SquashFS file system to be written.
type FS struct {
	root *node
}

type node struct {
	name     string
	mode     iofs.FileMode // type and permission bits
	children map[string]*node

	// regular files
	size int64
	open func() (io.ReadCloser, error)

	// symlinks
	target string

	// filled in while writing
	ino        uint32
	ref        uint64 // inode reference: metadata block << 16 | offset
	dataStart  uint64
	blockSizes []uint32
}

// New returns a tree holding only the root directory, mode 0755.
func New() *FS {
	return &FS{root: &node{mode: iofs.ModeDir | 0755, children: map[string]*node{}}}
}

// Mkdir creates the directory p with mode perm, and missing parents with
// mode 0755. An existing directory gets mode perm.
func (fs *FS) Mkdir(p string, perm iofs.FileMode) error {
	if strings.Trim(p, "/") == "" {
		fs.root.mode = iofs.ModeDir | perm.Perm()
		return nil
	}
	parent, name, err := fs.parent(p)
	if err != nil {
		return err
	}
	if c, ok := parent.children[name]; ok {
		if !c.mode.IsDir() {
			return fmt.Errorf("squashfs: mkdir %s: exists and is not a directory", p)
		}
		c.mode = iofs.ModeDir | perm.Perm()
		return nil
	}
	parent.children[name] = &node{name: name, mode: iofs.ModeDir | perm.Perm(), children: map[string]*node{}}
	return nil
}

// AddFile adds a regular file at p. open is called once when the file
// system is written and must yield exactly size bytes.
func (fs *FS) AddFile(p string, perm iofs.FileMode, size int64, open func() (io.ReadCloser, error)) error {
	if size < 0 {
		return fmt.Errorf("squashfs: %s: negative size", p)
	}
	return fs.add(p, &node{mode: perm.Perm() | perm&(iofs.ModeSetuid|iofs.ModeSetgid|iofs.ModeSticky), size: size, open: open})
}

// AddBytes adds a regular file with the content b.
func (fs *FS) AddBytes(p string, perm iofs.FileMode, b []byte) error {
	b = bytes.Clone(b)
	return fs.AddFile(p, perm, int64(len(b)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// AddHostFile adds the host file src at p with mode perm.
func (fs *FS) AddHostFile(p, src string, perm iofs.FileMode) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("squashfs: %s is not a regular file", src)
	}
	return fs.AddFile(p, perm, fi.Size(), func() (io.ReadCloser, error) { return os.Open(src) })
}

// Symlink adds a symbolic link at p pointing to target, e.g. "/perm/var".
func (fs *FS) Symlink(p, target string) error {
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return fmt.Errorf("squashfs: symlink %s: invalid target %q", p, target)
	}
	return fs.add(p, &node{mode: iofs.ModeSymlink | 0777, target: target})
}

// Exists reports whether p is in the tree.
func (fs *FS) Exists(p string) bool {
	n := fs.root
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" {
			continue
		}
		c, ok := n.children[part]
		if !ok {
			return false
		}
		n = c
	}
	return true
}

func (fs *FS) add(p string, n *node) error {
	parent, name, err := fs.parent(p)
	if err != nil {
		return err
	}
	if _, ok := parent.children[name]; ok {
		return fmt.Errorf("squashfs: %s already exists", p)
	}
	n.name = name
	parent.children[name] = n
	return nil
}

// parent returns the directory that will hold p, creating missing parents.
func (fs *FS) parent(p string) (*node, string, error) {
	p = strings.Trim(p, "/")
	if p == "" || path.Clean(p) != p {
		return nil, "", fmt.Errorf("squashfs: invalid path %q", p)
	}
	parts := strings.Split(p, "/")
	dir := fs.root
	for _, part := range parts[:len(parts)-1] {
		c, ok := dir.children[part]
		if !ok {
			c = &node{name: part, mode: iofs.ModeDir | 0755, children: map[string]*node{}}
			dir.children[part] = c
		}
		if !c.mode.IsDir() {
			return nil, "", fmt.Errorf("squashfs: %s: %s is not a directory", p, part)
		}
		dir = c
	}
	name := parts[len(parts)-1]
	if len(name) > 256 || strings.IndexByte(name, 0) >= 0 {
		return nil, "", fmt.Errorf("squashfs: invalid name %q", name)
	}
	return dir, name, nil
}

func (n *node) sorted() []*node {
	names := make([]string, 0, len(n.children))
	for k := range n.children {
		names = append(names, k)
	}
	sort.Strings(names) // byte order, which the kernel's lookup relies on
	out := make([]*node, len(names))
	for i, k := range names {
		out[i] = n.children[k]
	}
	return out
}

// Options are the file system's fixed parameters.
type Options struct {
	// ModTime stamps every inode and the superblock, e.g. the build
	// timestamp.
	ModTime time.Time
}
