// Package gokrazyfat runs gokrazy's own FAT reader
// (github.com/gokrazy/internal/fat) on an image, for tests.
//
// That reader is what the device uses to rewrite cmdline.txt and
// loader/entries/gokrazy.conf in place on /update/switch, so a boot file
// system it cannot parse breaks updates silently. Go forbids importing
// github.com/gokrazy/internal/... from this module, so this package writes
// a tiny program into a temporary module whose path lies under
// github.com/gokrazy/internal/ (which the internal-package rule allows)
// and runs it with the version of gokrazy/internal that this module's
// gokrazy runtime uses.
package gokrazyfat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

const program = `package main

import (
	"encoding/json"
	"io"
	"os"
	"strconv"

	"github.com/gokrazy/internal/fat"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	off, _ := strconv.ParseInt(os.Args[2], 10, 64)
	size, _ := strconv.ParseInt(os.Args[3], 10, 64)
	rd, err := fat.NewReader(io.NewSectionReader(f, off, size))
	if err != nil {
		panic(err)
	}
	result := map[string][2]int64{}
	for _, p := range os.Args[4:] {
		o, n, err := rd.Extents(p)
		if err != nil {
			result[p] = [2]int64{-1, -1}
			continue
		}
		result[p] = [2]int64{o, n}
	}
	json.NewEncoder(os.Stdout).Encode(result)
}
`

// Extents returns, for each path (e.g. "/cmdline.txt"), the byte offset
// (relative to the file system start) and length that gokrazy's reader
// finds in the FAT file system at [off, off+size) of the file img. A path
// the reader cannot find maps to {-1, -1}.
func Extents(img string, off, size int64, paths []string) (map[string][2]int64, error) {
	gomod, err := goOutput("", "env", "GOMOD")
	if err != nil || gomod == "" || gomod == os.DevNull {
		return nil, fmt.Errorf("locating this module's go.mod: %v", err)
	}
	root := filepath.Dir(gomod)
	version, err := goOutput(root, "list", "-m", "-f", "{{.Version}}", "github.com/gokrazy/internal")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hd-board-gokrazyfat-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	mod := "module github.com/gokrazy/internal/homederpcheck\n\ngo 1.22\n\nrequire github.com/gokrazy/internal " + version + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return nil, err
	}
	for name, content := range map[string][]byte{"go.mod": []byte(mod), "go.sum": sum, "main.go": []byte(program)} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0644); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(img)
	if err != nil {
		return nil, err
	}
	args := append([]string{"run", "-mod=mod", ".", abs, strconv.FormatInt(off, 10), strconv.FormatInt(size, 10)}, paths...)
	out, err := goOutput(dir, args...)
	if err != nil {
		return nil, err
	}
	var result map[string][2]int64
	if err := json.Unmarshal([]byte(out), &result); err != nil {
		return nil, fmt.Errorf("parsing the reader's output %q: %w", out, err)
	}
	return result, nil
}

func goOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	// GOFLAGS from the caller (e.g. -mod=readonly) must not apply to the
	// temporary module; the target is the host.
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOOS=", "GOARCH=", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}
