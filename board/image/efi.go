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

// The UEFI images boot through Debian's systemd-boot-efi at one pinned
// version, so that two builds of one commit carry the same loader (and are
// byte-identical) whatever the build host has installed. The SBOM records
// the package and version. Moving the pin is a one-line change here; when
// Debian's archive no longer carries the version, the build says so.
const (
	systemdBootPackage = "systemd-boot-efi"
	systemdBootVersion = "252.39-1~deb12u2" // Debian 12 (bookworm)
)

// efiLoader is the loader an image boots through and where it came from.
type efiLoader struct {
	file    string // on the build host
	sbomRef string // how the SBOM names it, independent of the host, e.g. "systemd-boot-efi:amd64/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	deb     Module // the Debian package and version; zero for an -efi-dir loader
}

// findEFILoader returns systemd-boot for the target architecture: from
// the explicit directory if one is given (the user's choice, recorded by
// its hash), else from Debian's package at the pinned version, either the
// host's if it has exactly that version installed or a copy fetched into
// the cache with apt-get.
func (b *builder) findEFILoader(ctx context.Context) (efiLoader, error) {
	efi, deb := efiArch(b.cfg.GOARCH())
	name := "systemd-boot" + efi + ".efi"
	const inPkg = "usr/lib/systemd/boot/efi"
	if d := b.opts.EFIDir; d != "" {
		p := filepath.Join(d, name)
		if !fileExists(p) {
			return efiLoader{}, fmt.Errorf("-efi-dir %s has no %s", d, name)
		}
		return efiLoader{file: p, sbomRef: "efi-dir/" + name}, nil
	}
	pkg := systemdBootPackage + ":" + deb
	l := efiLoader{
		sbomRef: pkg + "/" + inPkg + "/" + name,
		deb:     Module{Path: pkg, Version: systemdBootVersion},
	}
	if v := installedVersion(ctx, pkg); v == systemdBootVersion {
		if p := filepath.Join("/", inPkg, name); fileExists(p) {
			l.file = p
			return l, nil
		}
	} else if v != "" {
		b.logf("the host has %s %s; the image pins %s", pkg, v, systemdBootVersion)
	}
	cache := efiCacheDir(deb)
	if cache == "" {
		return efiLoader{}, fmt.Errorf("no cache directory for %s", pkg)
	}
	p := filepath.Join(cache, inPkg, name)
	if !fileExists(p) {
		if !b.opts.FetchEFI {
			return efiLoader{}, fmt.Errorf("%s %s is neither installed nor in %s: build with -fetch-efi (apt-get download), install exactly that version, or pass -efi-dir", pkg, systemdBootVersion, cache)
		}
		if err := fetchSystemdBoot(ctx, deb, cache, b.logf); err != nil {
			return efiLoader{}, err
		}
		if !fileExists(p) {
			return efiLoader{}, fmt.Errorf("%s %s has no %s", pkg, systemdBootVersion, filepath.Join(inPkg, name))
		}
	}
	l.file = p
	return l, nil
}

// installedVersion is the version of the Debian package pkg (name:arch)
// installed on the host, or "".
func installedVersion(ctx context.Context, pkg string) string {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Status} ${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "install ok installed ")
	if !ok {
		return ""
	}
	return v
}

// efiArch maps GOARCH to systemd-boot's and Debian's architecture names.
func efiArch(goarch string) (efi, deb string) {
	if goarch == "arm64" {
		return "aa64", "arm64"
	}
	return "x64", "amd64"
}

// efiCacheDir holds the unpacked package at the pinned version, so a new
// pin never reuses an old loader.
func efiCacheDir(deb string) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(cache, "homederp", systemdBootPackage, deb, systemdBootVersion)
}

// fetchSystemdBoot downloads Debian's systemd-boot-efi at the pinned
// version for debArch (e.g. "arm64" when building an arm64 image on an
// amd64 host) with apt-get's ordinary client and unpacks it into dir. apt
// must know the architecture: dpkg --add-architecture arm64 && apt-get
// update.
func fetchSystemdBoot(ctx context.Context, debArch, dir string, logf func(string, ...any)) error {
	pkg := systemdBootPackage + ":" + debArch + "=" + systemdBootVersion
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("fetching %s needs %s (a Debian host): %w", pkg, tool, err)
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
	logf("fetching %s with apt-get download", pkg)
	cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get download %s: %v\n%s\n(if apt does not know %s: dpkg --add-architecture %s && apt-get update; if Debian no longer carries this version, move the pin in board/image/efi.go)",
			pkg, err, strings.TrimSpace(out.String()), debArch, debArch)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, systemdBootPackage+"_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s left %d packages", pkg, len(debs))
	}
	// Unpack next to dir and rename, so an interrupted fetch never
	// leaves a half-unpacked cache that looks complete.
	if err := os.MkdirAll(filepath.Dir(dir), 0755); err != nil {
		return err
	}
	unpack, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(unpack)
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], unpack).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v\n%s", debs[0], err, out)
	}
	os.RemoveAll(dir)
	if err := os.Rename(unpack, dir); err != nil {
		return err
	}
	logf("unpacked %s into %s", filepath.Base(debs[0]), dir)
	return nil
}
