package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// FetchSystemdBoot downloads Debian's systemd-boot-efi package for debArch
// (e.g. "arm64" when building an arm64 image on an amd64 host) with
// apt-get's ordinary client and unpacks it into dir. apt must know the
// architecture: dpkg --add-architecture arm64 && apt-get update.
func FetchSystemdBoot(ctx context.Context, debArch, dir string, logf func(string, ...any)) error {
	if dir == "" {
		return fmt.Errorf("no cache directory for systemd-boot")
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("fetching systemd-boot-efi:%s needs %s (a Debian host): %w", debArch, tool, err)
		}
	}
	tmp, err := os.MkdirTemp("", "hd-board-deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// apt-get download drops privileges to _apt, which must be able to
	// write the directory.
	os.Chmod(tmp, 0777)
	logf("fetching systemd-boot-efi:%s with apt-get download", debArch)
	cmd := exec.CommandContext(ctx, "apt-get", "download", "systemd-boot-efi:"+debArch)
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get download systemd-boot-efi:%s: %v\n%s\n(if apt does not know %s: dpkg --add-architecture %s && apt-get update)",
			debArch, err, strings.TrimSpace(out.String()), debArch, debArch)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "systemd-boot-efi_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download systemd-boot-efi:%s left %d packages", debArch, len(debs))
	}
	if err := os.MkdirAll(dir, 0755); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], dir).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v\n%s", debs[0], err, out)
	}
	logf("unpacked %s into %s", filepath.Base(debs[0]), dir)
	return nil
}
