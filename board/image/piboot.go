package image

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/homederp/homederp/board/fat16"
	"github.com/homederp/homederp/board/profile"
)

// addPiBoot adds what the Raspberry Pi firmware loads besides config.txt
// and cmdline.txt: the device trees of the board's SoC and every overlay
// from the kernel package (config.txt's dtoverlay= lines name them, and
// they are small), a U-Boot script if there is one, and from the firmware
// package the GPU firmware the board runs with config (see piFirmware).
// Without pi (a Pi config of no known board) every model's files go in,
// as gok does it.
func addPiBoot(boot *fat16.FS, pi *profile.Pi, kernelDir, firmwareDir, config string) error {
	dtbs := []string{"*.dtb"}
	var firmware []string
	if pi != nil {
		dtbs = pi.DeviceTrees
		fw, err := piFirmware(pi.Firmware, config)
		if err != nil {
			return err
		}
		firmware = fw
	}
	if err := addGlobs(boot, kernelDir, append(dtbs, "boot.scr")...); err != nil {
		return err
	}
	if err := addDir(boot, filepath.Join(kernelDir, "overlays"), "overlays"); err != nil {
		return err
	}
	if pi == nil {
		return addGlobs(boot, firmwareDir, "*.bin", "*.dat", "*.elf", "*.upd", "*.sig", "overlays/*.dtbo")
	}
	for _, name := range firmware {
		if err := boot.AddHostFile(name, filepath.Join(firmwareDir, name)); err != nil {
			return fmt.Errorf("firmware package: %w", err)
		}
	}
	return nil
}

// piFirmware lists the firmware files of family ("start": Pi 3 and Zero 2
// W, "start4": Pi 4, "": Pi 5, none) that the board loads with config: the
// second-stage loader bootcode.bin (Pi 3 and Zero 2 W), the default
// start*.elf and fixup*.dat, and the variants config.txt selects:
// start_x=1 (camera), start_debug=1, gpu_mem=16 or less (the cut-down
// firmware), and files named by start_file= and fixup_file=. Conditional
// sections ([pi4], ...) are not evaluated: a variant named anywhere is
// included.
func piFirmware(family, config string) ([]string, error) {
	if family == "" {
		return nil, nil
	}
	if family != "start" && family != "start4" {
		return nil, fmt.Errorf("unknown Raspberry Pi firmware %q", family)
	}
	sep := "_" // start_x.elf, fixup_x.dat
	if family == "start4" {
		sep = "" // start4x.elf, fixup4x.dat
	}
	fixup := "fixup" + strings.TrimPrefix(family, "start")
	var files []string
	if family == "start" {
		files = append(files, "bootcode.bin")
	}
	seen := map[string]bool{}
	add := func(names ...string) {
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				files = append(files, n)
			}
		}
	}
	variant := func(v string) {
		if v == "" {
			add(family+".elf", fixup+".dat")
			return
		}
		add(family+sep+v+".elf", fixup+sep+v+".dat")
	}
	variant("")
	sc := bufio.NewScanner(strings.NewReader(config))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "start_x" && v == "1":
			variant("x")
		case k == "start_debug" && v == "1":
			variant("db")
		case k == "gpu_mem" || strings.HasPrefix(k, "gpu_mem_"):
			if n, err := strconv.Atoi(v); err == nil && n <= 16 {
				variant("cd")
			}
		case k == "start_file" || k == "fixup_file":
			if v == "" || strings.ContainsAny(v, "/\\") {
				return nil, fmt.Errorf("config.txt: %s=%q: want a file name in the boot partition's root", k, v)
			}
			add(v)
		}
	}
	return files, nil
}

// gzipKernel writes the gzip-compressed kernel to dir and returns its
// path. The Raspberry Pi firmware unpacks a gzip'd 64-bit kernel itself
// (since September 2020; Raspberry Pi OS ships its kernels so): an arm64
// Image does not decompress itself, and kernel.rpi's is 44 MiB, 16 MiB
// compressed. Reading 28 MiB less from an SD card also makes up for the
// time the unpacking takes. The output depends only on the kernel: the
// gzip header carries no name and no time.
func gzipKernel(src, dir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	defer in.Close()
	dest := filepath.Join(dir, "vmlinuz.gz")
	out, err := os.Create(dest)
	if err != nil {
		return "", err
	}
	zw, err := gzip.NewWriterLevel(out, gzip.BestCompression)
	if err != nil {
		out.Close()
		return "", err
	}
	if _, err := io.Copy(zw, in); err != nil {
		out.Close()
		return "", fmt.Errorf("compressing the kernel: %w", err)
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return "", err
	}
	return dest, out.Close()
}
