// Package image builds a homederp gokrazy image from an instance's
// config.json: it compiles every program from this module, generates
// gokrazy's init, and assembles the root (squashfs) and boot (FAT16) file
// systems and the disk around them.
//
// The same inputs (module, config, kernel/firmware module versions, build
// timestamp, password, EFI loader) give the same bytes: Go builds run with
// -trimpath, file systems are written in sorted order with every timestamp
// set to the build timestamp, and /perm is formatted deterministically.
package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/fat16"
	"github.com/homederp/homederp/board/gokrazyconfig"
	"github.com/homederp/homederp/board/profile"
	"github.com/homederp/homederp/board/squashfs"
)

// Options are the inputs of a build.
type Options struct {
	Config *gokrazyconfig.Config
	// Pi is the Raspberry Pi board's part of the kernel and firmware
	// packages (profile.Profile.Pi); nil for a UEFI board. A Pi config
	// without it gets every model's files, as gok builds it.
	Pi *profile.Pi
	// ConfigName is how the SBOM names the config, e.g.
	// "gokrazy-config/amd64/config.json".
	ConfigName string
	// ModuleDir is this module's root, where go build runs, e.g. "/src/homederp".
	ModuleDir string
	// WorkDir receives the binaries and root.squashfs; it must exist.
	WorkDir string
	// Timestamp is the build timestamp the device reports and every file
	// system carries, e.g. from SOURCE_DATE_EPOCH.
	Timestamp time.Time
	// HTTPPassword protects gokrazy's web interface and update API.
	HTTPPassword string
	// EFIDir is searched first for systemd-boot<arch>.efi ("" for none).
	EFIDir string
	// FetchEFI allows downloading Debian's systemd-boot-efi at the pinned
	// version (efi.go) with apt-get when the host lacks exactly it.
	FetchEFI bool
	Logf     func(format string, args ...any)
}

// Result is a built image: its file systems, ready to be written to a
// disk or pushed to a running box.
type Result struct {
	Hostname  string
	GOARCH    string
	Timestamp string // e.g. "2026-07-01T12:34:56Z", as gokrazy's status reports it
	Cmdline   string // the padded kernel command line
	SBOMHash  string

	RootFile string       // root.squashfs in WorkDir
	RootSize int64        // bytes
	Boot     *fat16.Image // the boot file system
	Programs []Program    // what is in /gokrazy and /user
	Modules  []Module     // kernel, firmware, EEPROM versions
	modTime  time.Time
}

// Program is one binary in the image.
type Program struct {
	Path string // e.g. "/user/tailscaled"
	Pkg  string // e.g. "tailscale.com/cmd/tailscaled"
	Size int64
}

type builder struct {
	opts Options
	cfg  *gokrazyconfig.Config
	work string
	logf func(string, ...any)
}

type packageSettings func(pkg string) gokrazyconfig.PackageConfig

// Build builds the image.
func Build(ctx context.Context, opts Options) (*Result, error) {
	if opts.Config == nil {
		return nil, fmt.Errorf("no configuration")
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	cfg := opts.Config
	if cfg.Update == nil || !cfg.Update.NoPassword {
		if opts.HTTPPassword == "" {
			return nil, fmt.Errorf("no password for gokrazy's web interface (or set Update.NoPassword)")
		}
	}
	b := &builder{opts: opts, cfg: cfg, work: opts.WorkDir, logf: opts.Logf}
	ts := opts.Timestamp.UTC().Truncate(time.Second)
	res := &Result{
		Hostname:  cfg.Hostname,
		GOARCH:    cfg.GOARCH(),
		Timestamp: ts.Format(time.RFC3339),
		modTime:   ts,
	}

	var in bootInputs
	var s sbom
	s.ConfigHash.Path, s.ConfigHash.Hash = opts.ConfigName, cfg.Hash
	for _, m := range []struct {
		module string
		dir    *string
	}{
		{cfg.KernelPackageOrDefault(), &in.kernelDir},
		{cfg.FirmwarePackageOrDefault(), &in.firmwareDir},
		{cfg.EEPROMPackageOrDefault(), &in.eepromDir},
	} {
		if m.module == "" {
			continue
		}
		dir, version, err := b.moduleDir(ctx, m.module)
		if err != nil {
			return nil, err
		}
		*m.dir = dir
		s.Modules = append(s.Modules, Module{m.module, version})
	}
	if in.kernelDir == "" {
		return nil, fmt.Errorf("no KernelPackage")
	}
	if in.firmwareDir == "" {
		// Not a Raspberry Pi: the board boots through UEFI.
		loader, err := b.findEFILoader(ctx)
		if err != nil {
			return nil, err
		}
		in.efiLoader = loader.file
		sum, err := fileSHA256(loader.file)
		if err != nil {
			return nil, err
		}
		s.Files = append(s.Files, sbomFile{loader.sbomRef, sum})
		if loader.deb.Path != "" {
			s.Debian = append(s.Debian, loader.deb)
		}
	}
	res.Modules = s.Modules

	bins, err := b.buildPackages(ctx)
	if err != nil {
		return nil, err
	}
	src, err := initSource(res.Timestamp, bins, func(pkg string) gokrazyconfig.PackageConfig { return cfg.PackageConfig[pkg] })
	if err != nil {
		return nil, fmt.Errorf("generating gokrazy's init: %w", err)
	}
	initFile, err := b.buildInit(ctx, src)
	if err != nil {
		return nil, err
	}
	bins = append([]builtBin{{pkg: "init", dest: "/gokrazy/init", file: initFile}}, bins...)
	for _, bin := range bins {
		info, err := readBuildInfo(bin.file)
		if err != nil {
			return nil, err
		}
		s.GoPackages = append(s.GoPackages, sbomPackage{bin.pkg, info})
		fi, err := os.Stat(bin.file)
		if err != nil {
			return nil, err
		}
		res.Programs = append(res.Programs, Program{bin.dest, bin.pkg, fi.Size()})
	}
	sbomJSON, hash, err := s.json()
	if err != nil {
		return nil, err
	}
	res.SBOMHash = hash

	root, err := b.rootTree(bins, in.kernelDir, sbomJSON)
	if err != nil {
		return nil, fmt.Errorf("root file system: %w", err)
	}
	res.RootFile = filepath.Join(b.work, "root.squashfs")
	f, err := os.Create(res.RootFile)
	if err != nil {
		return nil, err
	}
	n, err := root.WriteTo(f, squashfs.Options{ModTime: ts})
	if err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("writing the root file system: %w", err)
	}
	res.RootSize = n
	if max := int64(disk.RootSectors) * disk.SectorSize; n > max {
		return nil, fmt.Errorf("root file system is %d MiB, the root partitions hold %d MiB", n>>20, max>>20)
	}

	boot, line, err := b.bootTree(in)
	if err != nil {
		return nil, fmt.Errorf("boot file system: %w", err)
	}
	res.Cmdline = line
	h := disk.HostHash(cfg.Hostname)
	res.Boot, err = boot.Build(fat16.Options{VolumeID: h, Label: "HOMEDERP", ModTime: ts, HiddenSectors: disk.FirstLBA})
	if err != nil {
		return nil, fmt.Errorf("boot file system: %w", err)
	}
	if max := int64(disk.BootSectors) * disk.SectorSize; res.Boot.Size() > max {
		return nil, fmt.Errorf("boot file system is %d MiB, the boot partition holds %d MiB", res.Boot.Size()>>20, max>>20)
	}
	return res, nil
}
