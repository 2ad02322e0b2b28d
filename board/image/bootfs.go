package image

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/homederp/homederp/board/cmdline"
	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/fat16"
)

// bootInputs are the module directories the boot partition is made from.
type bootInputs struct {
	kernelDir   string
	firmwareDir string // "" unless a Raspberry Pi
	eepromDir   string // "" unless a Raspberry Pi 4
	efiLoader   string // systemd-boot for the target, "" on a Raspberry Pi
}

// bootTree assembles the boot partition:
//
//	vmlinuz, cmdline.txt, loader/entries/gokrazy.conf   every board
//	EFI/BOOT/BOOTX64.EFI or BOOTAA64.EFI               UEFI boards (systemd-boot)
//	config.txt, the board's *.dtb, overlays/, bootcode.bin, start*.elf,
//	fixup*.dat; vmlinuz gzip-compressed                 Raspberry Pi
//	pieeprom.upd/.sig, vl805.bin/.sig, recovery.bin     Raspberry Pi 4
func (b *builder) bootTree(in bootInputs) (*fat16.FS, string, error) {
	boot := fat16.New()
	kernel := filepath.Join(in.kernelDir, "vmlinuz")
	if in.firmwareDir != "" {
		k, err := gzipKernel(kernel, b.work)
		if err != nil {
			return nil, "", err
		}
		kernel = k
	}
	if err := boot.AddHostFile("vmlinuz", kernel); err != nil {
		return nil, "", fmt.Errorf("kernel: %w", err)
	}
	kernelArgs, err := os.ReadFile(filepath.Join(in.kernelDir, "cmdline.txt"))
	if err != nil {
		return nil, "", fmt.Errorf("kernel package: %w", err)
	}
	line, err := cmdline.Cmdline(cmdline.Options{
		KernelArgs:    string(kernelArgs),
		SerialConsole: b.cfg.SerialConsoleOrDefault(),
		ExtraArgs:     b.cfg.KernelExtraArgs,
		RootPARTUUID:  disk.PartGUID(b.cfg.Hostname, disk.Boot).String(),
	})
	if err != nil {
		return nil, "", err
	}
	if err := boot.AddBytes("cmdline.txt", []byte(line)); err != nil {
		return nil, "", err
	}
	if err := boot.AddBytes("loader/entries/gokrazy.conf", []byte(cmdline.LoaderEntry(line))); err != nil {
		return nil, "", err
	}
	if in.efiLoader != "" {
		name := "EFI/BOOT/BOOTX64.EFI"
		if b.cfg.GOARCH() == "arm64" {
			name = "EFI/BOOT/BOOTAA64.EFI"
		}
		if err := boot.AddHostFile(name, in.efiLoader); err != nil {
			return nil, "", err
		}
	}

	if in.firmwareDir != "" {
		kernelConfig, err := os.ReadFile(filepath.Join(in.kernelDir, "config.txt"))
		if err != nil {
			return nil, "", fmt.Errorf("kernel package: %w", err)
		}
		config := cmdline.ConfigTxt(string(kernelConfig), b.cfg.SerialConsoleOrDefault(), b.cfg.BootloaderExtraLines)
		if err := boot.AddBytes("config.txt", []byte(config)); err != nil {
			return nil, "", err
		}
		if err := addPiBoot(boot, b.opts.Pi, in.kernelDir, in.firmwareDir, config); err != nil {
			return nil, "", err
		}
	}
	if in.eepromDir != "" {
		if err := b.addEEPROM(boot, in.eepromDir); err != nil {
			return nil, "", err
		}
	}
	return boot, line, nil
}

// addEEPROM adds the Raspberry Pi 4 bootloader update, as rpi-eeprom-update
// stages it: the newest pieeprom-*.bin as pieeprom.upd with a .sig (its
// SHA-256 and "ts: <unix time>", here the build time), the newest VL805
// USB controller firmware with its .sig, and recovery.bin, which the boot
// ROM runs to flash them and then renames to RECOVERY.000.
func (b *builder) addEEPROM(boot *fat16.FS, dir string) error {
	newest := func(glob string) (string, error) {
		m, err := filepath.Glob(filepath.Join(dir, glob))
		if err != nil || len(m) == 0 {
			return "", fmt.Errorf("EEPROM package %s has no %s", dir, glob)
		}
		sort.Strings(m)
		return m[len(m)-1], nil
	}
	pieeprom, err := newest("pieeprom-*.bin")
	if err != nil {
		return err
	}
	vl805, err := newest("vl805-*.bin")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		src, dest, sig string
	}{
		{pieeprom, "pieeprom.upd", "pieeprom.sig"},
		{vl805, "vl805.bin", "vl805.sig"},
		{filepath.Join(dir, "recovery.bin"), "recovery.bin", ""},
	} {
		if err := boot.AddHostFile(f.dest, f.src); err != nil {
			return err
		}
		if f.sig == "" {
			continue
		}
		sum, err := fileSHA256(f.src)
		if err != nil {
			return err
		}
		sig := sum + "\n"
		if f.sig == "pieeprom.sig" {
			sig += fmt.Sprintf("ts: %d\n", b.opts.Timestamp.Unix())
		}
		if err := boot.AddBytes(f.sig, []byte(sig)); err != nil {
			return err
		}
	}
	return nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// addGlobs adds the files in dir matching each pattern, at the same
// relative path.
func addGlobs(boot *fat16.FS, dir string, patterns ...string) error {
	for _, pat := range patterns {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return err
		}
		sort.Strings(m)
		for _, p := range m {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			if err := boot.AddHostFile(filepath.ToSlash(rel), p); err != nil {
				return err
			}
		}
	}
	return nil
}

// addDir adds the directory src (if it exists) as dest, recursively.
func addDir(boot *fat16.FS, src, dest string) error {
	if _, err := os.Stat(src); os.IsNotExist(err) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return boot.AddHostFile(dest+"/"+filepath.ToSlash(rel), p)
	})
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
