// Package statefile writes persistent state files so that an interruption
// at any moment leaves either the old or the new content on disk, never a
// truncated or mixed file. Every file homederp keeps under /perm goes
// through Write.
//
// What is tested: a writer killed with SIGKILL at random moments
// (appliance/config's TestSaveSurvivesSIGKILL) always leaves one whole
// generation. That proves the temp-file-and-rename protocol against a
// process dying, not the storage against a power cut: the fsyncs of the
// file and of its directory are what a power cut needs. board/image's
// TestPowerCuts is the proof on the box's file system: qemu killed at
// random moments during config saves, tailscaled logins, updates and
// ACME issuance, and every boot finds one whole configuration and whole
// ACME files (scripts/bench-powercut.sh: 50 cuts).
package statefile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// Write replaces path with data: it writes a temporary file in the same
// directory, fsyncs it, renames it over path and then fsyncs the directory
// so that the rename itself survives a power cut. The file gets mode perm
// (e.g. 0600 for anything that holds a secret).
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := renameio.WriteFile(path, data, perm, renameio.WithPermissions(perm)); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// RemoveTemp deletes temporary files that a Write of path left behind when
// the process died mid-write (renameio names them "." + base + digits).
// Call it once at start-up, before any Write of path runs.
func RemoveTemp(path string) error {
	dir, base := filepath.Split(path)
	matches, err := filepath.Glob(filepath.Join(dir, "."+base+"*"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		suffix := strings.TrimPrefix(filepath.Base(m), "."+base)
		if suffix == "" || strings.Trim(suffix, "0123456789") != "" {
			continue
		}
		if err := os.Remove(m); err != nil {
			return fmt.Errorf("removing leftover %s: %w", m, err)
		}
	}
	return nil
}
