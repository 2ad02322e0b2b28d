// Package profile names the boards homederp builds images for. Each board
// is one gokrazy instance directory under gokrazy-config/ whose
// config.json (read by upstream gok and by this tool alike) says
// everything about the image: architecture, kernel, firmware, EEPROM,
// serial console, packages and their flags. A profile adds only what a
// person choosing a board needs to read.
package profile

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/homederp/homederp/board/gokrazyconfig"
)

// Profile is one supported board.
type Profile struct {
	Name        string // e.g. "rpi4": the -board flag and the instance directory
	Description string // e.g. "Raspberry Pi 4 Model B, 400, CM4"
	// Boot says how the board finds the kernel, for the README and the
	// build summary.
	Boot string
}

// Profiles are the supported boards.
var Profiles = []Profile{
	{"amd64", "x86-64 mini PCs and routers (UEFI)", "UEFI firmware → systemd-boot (EFI/BOOT/BOOTX64.EFI) → kernel"},
	{"arm64", "generic arm64 boards and VMs with UEFI (SystemReady)", "UEFI firmware → systemd-boot (EFI/BOOT/BOOTAA64.EFI) → kernel"},
	{"rpi3", "Raspberry Pi 3 Model B/B+, 3 A+", "boot ROM → bootcode.bin, start.elf → kernel"},
	{"rpi4", "Raspberry Pi 4 Model B, Pi 400, CM4 (bootloader EEPROM updates included)", "EEPROM bootloader → start4.elf → kernel"},
	{"rpi5", "Raspberry Pi 5, Pi 500, CM5", "EEPROM bootloader → kernel"},
	{"rpizero2w", "Raspberry Pi Zero 2 W (no Ethernet: use a USB Ethernet adapter)", "boot ROM → bootcode.bin, start.elf → kernel"},
}

// Lookup returns the profile called name.
func Lookup(name string) (Profile, error) {
	for _, p := range Profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown board %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Names lists the board names, sorted.
func Names() []string {
	var out []string
	for _, p := range Profiles {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

// ConfigPath is the board's config.json under configDir (normally the
// repository's gokrazy-config directory).
func (p Profile) ConfigPath(configDir string) string {
	return filepath.Join(configDir, p.Name, "config.json")
}

// Load reads the board's config.json.
func (p Profile) Load(configDir string) (*gokrazyconfig.Config, error) {
	return gokrazyconfig.Load(p.ConfigPath(configDir))
}
