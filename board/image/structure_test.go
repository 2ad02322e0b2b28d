package image

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/internal/gokrazyfat"
	"github.com/homederp/homederp/board/internal/testimage"
	"github.com/homederp/homederp/board/profile"
	"github.com/homederp/homederp/internal/testenv"
)

// bootFiles must (and absentBootFiles must not) be on each board's boot
// partition.
var (
	common    = []string{"vmlinuz", "cmdline.txt", "loader/entries/gokrazy.conf"}
	piCommon  = []string{"config.txt", "overlays/overlay_map.dtb", "overlays/vc4-kms-v3d.dtbo"}
	bootFiles = map[string][]string{
		"amd64":     {"EFI/BOOT/BOOTX64.EFI"},
		"arm64":     {"EFI/BOOT/BOOTAA64.EFI"},
		"rpi3":      {"bootcode.bin", "start.elf", "fixup.dat", "bcm2710-rpi-3-b.dtb", "bcm2710-rpi-3-b-plus.dtb", "bcm2837-rpi-3-b.dtb"},
		"rpi4":      {"start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "pieeprom.upd", "pieeprom.sig", "vl805.bin", "vl805.sig", "recovery.bin"},
		"rpi5":      {"bcm2712-rpi-5-b.dtb", "bcm2712d0-rpi-5-b.dtb"},
		"rpizero2w": {"bootcode.bin", "start.elf", "bcm2710-rpi-zero-2-w.dtb"},
	}
	// Each Pi carries only its own SoC's device trees and firmware.
	absentBootFiles = map[string][]string{
		"amd64":     {"config.txt", "start4.elf", "EFI/BOOT/BOOTAA64.EFI"},
		"arm64":     {"config.txt", "EFI/BOOT/BOOTX64.EFI"},
		"rpi3":      {"pieeprom.upd", "EFI/BOOT/BOOTAA64.EFI", "start4.elf", "start_x.elf", "start_cd.elf", "bcm2711-rpi-4-b.dtb", "bcm2712-rpi-5-b.dtb"},
		"rpi4":      {"EFI/BOOT/BOOTAA64.EFI", "bootcode.bin", "start.elf", "start4x.elf", "bcm2710-rpi-3-b.dtb", "bcm2712-rpi-5-b.dtb"},
		"rpi5":      {"pieeprom.upd", "recovery.bin", "bootcode.bin", "start.elf", "start4.elf", "bcm2711-rpi-4-b.dtb"}, // a Pi 4 EEPROM must never reach a Pi 5
		"rpizero2w": {"pieeprom.upd", "recovery.bin", "start4.elf", "bcm2711-rpi-4-b.dtb"},
	}
	machine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
)

// maxWritten is issue 12's ceiling on an image's written bytes (the
// allocated bytes of the image file: what `board flash` writes, and what
// a download of the image costs), for every board.
const maxWritten = 80 << 20

// TestImageStructure builds every board's image once and reads it back
// with independent tools: sfdisk and fdisk (partition tables), fsck.fat
// and mtools (boot files), gokrazy's own FAT reader (what /update/switch
// uses), unsquashfs (root tree and modes), e2fsck (/perm). It fails when
// an image's written bytes grow past maxWritten.
func TestImageStructure(t *testing.T) {
	for _, tool := range []string{"sfdisk", "fdisk", "fsck.fat", "mdir", "mtype", "unsquashfs", "e2fsck"} {
		testenv.NeedCommand(t, tool)
	}
	var sizes []string
	for _, p := range profile.Profiles {
		t.Run(p.Name, func(t *testing.T) {
			b := buildBoard(t, p.Name, firstTimestamp)
			checkPartitionTable(t, b)
			boot := checkBoot(t, p.Name, b)
			checkRoot(t, b, strings.HasPrefix(p.Boot, "UEFI"))
			checkPerm(t, b)
			alloc := allocated(t, b.image)
			if alloc > maxWritten {
				t.Errorf("written bytes of the image: got %.1f MiB, want at most %d MiB", float64(alloc)/(1<<20), maxWritten>>20)
			}
			line := fmt.Sprintf("%-10s boot FAT16 %6.1f MiB  root squashfs %6.1f MiB  image %d MiB (%.1f MiB allocated)  built in %v",
				p.Name, float64(boot)/(1<<20), float64(b.res.RootSize)/(1<<20), int64(testImageSize)>>20, float64(alloc)/(1<<20), b.took.Round(1e9))
			t.Log(line)
			sizes = append(sizes, line)
		})
	}
	sort.Strings(sizes)
	out := filepath.Join(outputDir(t), "board-image-sizes.txt")
	if err := os.WriteFile(out, []byte(strings.Join(sizes, "\n")+"\n"), 0644); err == nil {
		t.Logf("sizes written to %s", out)
	}
}

func checkPartitionTable(t *testing.T, b *testBuild) {
	out, err := exec.Command("sfdisk", "-J", b.image).Output()
	if err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	var got struct {
		PartitionTable struct {
			Label      string
			ID         string
			Partitions []struct {
				Start, Size int64
				Type, UUID  string
			}
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("sfdisk -J: %v\n%s", err, out)
	}
	l, _ := disk.NewLayout(testImageSize)
	pt := got.PartitionTable
	if pt.Label != "gpt" || pt.ID != disk.DiskGUID(b.res.Hostname).String() || len(pt.Partitions) != 4 {
		t.Fatalf("sfdisk -J: got label %q id %q with %d partitions:\n%s", pt.Label, pt.ID, len(pt.Partitions), out)
	}
	types := []string{disk.TypeESP.String(), disk.RootType(b.res.GOARCH).String(), disk.TypeLinuxData.String(), disk.TypeLinuxData.String()}
	for i, part := range pt.Partitions {
		want := l.Parts[i]
		if part.Start != want.Start || part.Size != want.Sectors || part.Type != types[i] || part.UUID != disk.PartGUID(b.res.Hostname, i+1).String() {
			t.Errorf("sfdisk partition %d: got %+v, want start %d size %d type %s", i+1, part, want.Start, want.Sectors, types[i])
		}
	}
	out, err = exec.Command("fdisk", "-l", "-t", "dos", b.image).CombinedOutput()
	if err != nil {
		t.Fatalf("fdisk -l -t dos: %v\n%s", err, out)
	}
	norm := strings.Join(strings.Fields(string(out)), " ")
	for _, want := range []string{"disk.img1 * 8192 212991 204800 100M c W95 FAT32 (LBA)", "disk.img2 1 8191 8191 4M ee GPT"} {
		if !strings.Contains(norm, want) {
			t.Errorf("hybrid MBR: fdisk -l -t dos lacks %q:\n%s", want, out)
		}
	}
}

// checkBoot checks the boot file system and returns its size.
func checkBoot(t *testing.T, board string, b *testBuild) int64 {
	l, _ := disk.NewLayout(testImageSize)
	part := l.Part(disk.Boot)
	size := b.res.Boot.Size()
	fat := testimage.Extract(t, b.image, part.Offset(), size)
	if out, err := exec.Command("fsck.fat", "-n", fat).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
	env := append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	cmd := exec.Command("mdir", "-b", "-/", "-i", fat, "::")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mdir: %v", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		have[strings.TrimPrefix(strings.TrimSpace(line), "::/")] = true
	}
	want := append(append([]string(nil), common...), bootFiles[board]...)
	if strings.HasPrefix(board, "rpi") {
		want = append(want, piCommon...)
	}
	for _, f := range want {
		if !have[f] {
			t.Errorf("boot partition lacks %s", f)
		}
	}
	for _, f := range absentBootFiles[board] {
		if have[f] {
			t.Errorf("boot partition has %s, which %s must not have", f, board)
		}
	}

	// cmdline.txt: PARTUUID of partition 1, PARTNROFF=1, 64 spaces, no
	// newline; the loader entry repeats it.
	cmd = exec.Command("mtype", "-i", fat, "::/cmdline.txt")
	cmd.Env = env
	line, err := cmd.Output()
	if err != nil {
		t.Fatalf("mtype cmdline.txt: %v", err)
	}
	guid := strings.ToLower(disk.PartGUID(b.res.Hostname, 1).String())
	re := regexp.MustCompile(`^console=tty1 console=\S+ root=PARTUUID=` + guid + `/PARTNROFF=1 .*init=/gokrazy/init.*\S {64}$`)
	if !re.Match(line) {
		t.Errorf("cmdline.txt %q does not match %s", line, re)
	}
	cmd = exec.Command("mtype", "-i", fat, "::/loader/entries/gokrazy.conf")
	cmd.Env = env
	entry, err := cmd.Output()
	if err != nil {
		t.Fatalf("mtype gokrazy.conf: %v", err)
	}
	if !bytes.HasSuffix(entry, append([]byte("\noptions "), line...)) || !bytes.Contains(entry, []byte("linux /vmlinuz\n")) {
		t.Errorf("loader entry %q does not carry the command line", entry)
	}
	if strings.HasPrefix(board, "rpi") {
		// The Pi firmware unpacks the kernel: it must be the kernel
		// package's, gzip'd.
		cmd = exec.Command("mtype", "-i", fat, "::/vmlinuz")
		cmd.Env = env
		kernel, err := cmd.Output()
		if err != nil {
			t.Fatalf("mtype vmlinuz: %v", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(kernel))
		if err != nil {
			t.Fatalf("vmlinuz: %v", err)
		}
		unpacked, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("vmlinuz: %v", err)
		}
		want, err := os.ReadFile(filepath.Join(moduleCacheDir(t, "github.com/gokrazy/kernel.rpi"), "vmlinuz"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(unpacked, want) {
			t.Errorf("vmlinuz unpacks to %d bytes that are not kernel.rpi's vmlinuz (%d bytes)", len(unpacked), len(want))
		}
		cmd = exec.Command("mtype", "-i", fat, "::/config.txt")
		cmd.Env = env
		config, err := cmd.Output()
		if err != nil {
			t.Fatalf("mtype config.txt: %v", err)
		}
		for _, w := range []string{"arm_control=0x200", "enable_uart=1", "kernel=vmlinuz", "arm_64bit=1"} {
			if !bytes.Contains(config, []byte(w)) {
				t.Errorf("config.txt lacks %s:\n%s", w, config)
			}
		}
	}
	if board == "rpi4" {
		cmd = exec.Command("mtype", "-i", fat, "::/pieeprom.sig")
		cmd.Env = env
		sig, err := cmd.Output()
		if err != nil {
			t.Fatalf("mtype pieeprom.sig: %v", err)
		}
		cmd = exec.Command("mtype", "-i", fat, "::/pieeprom.upd")
		cmd.Env = env
		upd, err := cmd.Output()
		if err != nil {
			t.Fatalf("mtype pieeprom.upd: %v", err)
		}
		want := fmt.Sprintf("%x\nts: %d\n", sha256.Sum256(upd), firstTimestamp.Unix())
		if string(sig) != want {
			t.Errorf("pieeprom.sig: got %q, want %q", sig, want)
		}
	}

	// gokrazy's own reader must find what /update/switch rewrites, at the
	// offsets this package laid them out.
	got, err := gokrazyfat.Extents(b.image, part.Offset(), size, []string{"/cmdline.txt", "/loader/entries/gokrazy.conf"})
	if err != nil {
		t.Fatal(err)
	}
	for p, ext := range got {
		off, n, _ := b.res.Boot.Extent(p)
		if ext != [2]int64{off, n} {
			t.Errorf("gokrazy fat.Reader.Extents(%s): got %v, want [%d %d]", p, ext, off, n)
		}
	}
	return size
}

func checkRoot(t *testing.T, b *testBuild, uefi bool) {
	l, _ := disk.NewLayout(testImageSize)
	root := testimage.Extract(t, b.image, l.Part(disk.RootA).Offset(), b.res.RootSize)
	out, err := exec.Command("unsquashfs", "-n", "-lls", "-d", "", root).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -lls: %v\n%s", err, out)
	}
	entries := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.Contains(f[1], "/") {
			continue
		}
		if f[1] != "root/root" {
			t.Errorf("not owned by root: %s", line)
		}
		entries[strings.Join(f[5:], " ")] = f[0]
	}
	for name, mode := range map[string]string{
		"":                                     "drwxr-xr-x",
		"/var -> /perm/var":                    "lrwxrwxrwx",
		"/etc/resolv.conf -> /tmp/resolv.conf": "lrwxrwxrwx",
		"/etc/gokr-pw.txt":                     "-r--------",
		"/etc/hostname":                        "-rw-r--r--",
		"/etc/http-port.txt":                   "-rw-r--r--",
		"/etc/ssl/ca-bundle.pem":               "-rw-r--r--",
		"/etc/gokrazy/sbom.json":               "-rw-r--r--",
		"/gokrazy/init":                        "-rwxr-xr-x",
		"/gokrazy/dhcp":                        "-rwxr-xr-x",
		"/gokrazy/ntp":                         "-rwxr-xr-x",
		"/user/appliance":                      "-rwxr-xr-x",
		"/user/tailscaled":                     "-rwxr-xr-x",
		"/perm":                                "drwxr-xr-x",
		"/tmp":                                 "drwxr-xr-x",
		"/dev":                                 "drwxr-xr-x",
	} {
		if got, ok := entries[name]; !ok {
			t.Errorf("root lacks %q", name)
		} else if got != mode {
			t.Errorf("root %q: mode %s, want %s", name, got, mode)
		}
	}
	if !hasPrefix(entries, "/lib/modules/") {
		t.Errorf("root lacks the kernel modules")
	}
	cat := func(p string) []byte {
		t.Helper()
		out, err := exec.Command("unsquashfs", "-cat", root, p).Output()
		if err != nil {
			t.Fatalf("unsquashfs -cat %s: %v", p, err)
		}
		return out
	}
	for p, want := range map[string]string{
		"/etc/hostname":       "homederp",
		"/etc/http-port.txt":  "8080",
		"/etc/https-port.txt": "8443",
		"/etc/gokr-pw.txt":    testPassword,
	} {
		if got := string(cat(p)); got != want {
			t.Errorf("%s: got %q, want %q", p, got, want)
		}
	}
	// The programs are for the board's architecture, and tailscaled is the
	// pinned tailscale.com version (the SBOM carries each build info).
	bin := filepath.Join(t.TempDir(), "tailscaled")
	if err := os.WriteFile(bin, cat("/user/tailscaled"), 0644); err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	if ef.Machine != machine[b.res.GOARCH] {
		t.Errorf("tailscaled is for %v, want %v", ef.Machine, machine[b.res.GOARCH])
	}
	ef.Close()
	var sb struct {
		Hash string `json:"sbom_hash"`
		SBOM struct {
			GoPackages []struct {
				Path      string `json:"path"`
				BuildInfo string `json:"build_info"`
			} `json:"go_packages"`
			Debian []Module   `json:"debian_packages"`
			Files  []sbomFile `json:"files"`
		} `json:"sbom"`
	}
	if err := json.Unmarshal(cat("/etc/gokrazy/sbom.json"), &sb); err != nil {
		t.Fatal(err)
	}
	if sb.Hash != b.res.SBOMHash {
		t.Errorf("sbom_hash %s, want %s", sb.Hash, b.res.SBOMHash)
	}
	tsVersion := goModVersion(t, "tailscale.com")
	found := false
	for _, p := range sb.SBOM.GoPackages {
		if p.Path == "tailscale.com/cmd/tailscaled" {
			found = true
			if !regexp.MustCompile(`(?m)^\s*mod\s+tailscale.com\s+` + regexp.QuoteMeta(tsVersion) + `\s`).MatchString(p.BuildInfo) {
				t.Errorf("tailscaled build info lacks tailscale.com %s:\n%s", tsVersion, p.BuildInfo)
			}
		}
	}
	if !found {
		t.Errorf("SBOM lacks tailscaled")
	}
	// A UEFI image records its loader's Debian package at the pinned
	// version, and names the file independently of the build host.
	var wantDeb []Module
	if uefi {
		_, deb := efiArch(b.res.GOARCH)
		wantDeb = []Module{{Path: "systemd-boot-efi:" + deb, Version: systemdBootVersion}}
	}
	if !slices.Equal(sb.SBOM.Debian, wantDeb) {
		t.Errorf("SBOM debian_packages: got %v, want %v", sb.SBOM.Debian, wantDeb)
	}
	for _, f := range sb.SBOM.Files {
		if strings.HasPrefix(f.Path, "/") {
			t.Errorf("SBOM file %q names a path on the build host", f.Path)
		}
	}
}

func checkPerm(t *testing.T, b *testBuild) {
	l, _ := disk.NewLayout(testImageSize)
	p := l.Part(disk.Perm)
	img := testimage.Extract(t, b.image, p.Offset(), p.Size())
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn /perm: %v\n%s", err, out)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint16(sb[0x38:]); got != 0xEF53 {
		t.Errorf("/perm magic: got %#x", got)
	}
}

func hasPrefix(m map[string]string, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// goModVersion is the version of module in this module's build list.
func goModVersion(t *testing.T, module string) string {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", module)
	cmd.Dir = moduleDir(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", module, err)
	}
	return strings.TrimSpace(string(out))
}

// moduleCacheDir is the directory of a module go.mod requires.
func moduleCacheDir(t *testing.T, module string) string {
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = moduleDir(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", module, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: no directory (%v)", module, err)
	}
	return info.Dir
}

// allocated is how many bytes of a sparse file are on disk.
func allocated(t testing.TB, p string) int64 {
	out, err := exec.Command("du", "-B1", p).Output()
	if err != nil {
		return 0
	}
	var n int64
	fmt.Sscan(string(out), &n)
	return n
}

// TestReproducible builds the amd64 image twice from the same inputs,
// back to back (other people edit this repository while tests run), into
// different directories, and compares the bytes.
func TestReproducible(t *testing.T) {
	testenv.NeedLong(t)
	a, err := doBuild(t, "amd64", firstTimestamp, filepath.Join(testDir, "repro-a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := doBuild(t, "amd64", firstTimestamp, filepath.Join(testDir, "repro-b"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ name, a, b string }{
		{"root file system", a.res.RootFile, b.res.RootFile},
		{"disk image", a.image, b.image},
	} {
		ha, hb := hashFile(t, f.a), hashFile(t, f.b)
		if ha != hb {
			t.Errorf("%s differs between two builds: %s vs %s", f.name, ha, hb)
		} else {
			t.Logf("%s: sha256 %s both times", f.name, ha)
		}
	}
	if a.res.SBOMHash != b.res.SBOMHash {
		t.Errorf("the SBOMs differ: a program's build info changed (was a source file edited between the builds?)")
	}
}

func hashFile(t testing.TB, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
