// Package profile names the boards homederp builds images for. Each board
// is one gokrazy instance directory under gokrazy-config/ whose
// config.json (read by upstream gok and by this tool alike) says
// everything about the image: architecture, kernel, firmware, EEPROM,
// serial console, packages and their flags. A profile adds what a person
// choosing a board needs to read, and for a Raspberry Pi which of the
// kernel and firmware packages' boot files that board loads (gokrazy's
// config has no field for it: gok copies every model's files).
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
	// Pi is what a Raspberry Pi's boot partition carries; nil for UEFI
	// boards.
	Pi *Pi
}

// Pi is the part of the Raspberry Pi kernel and firmware packages a board
// boots from. The packages carry the files of every Pi model (about 70
// MiB); an image carries its board's.
type Pi struct {
	// DeviceTrees match the device trees of the board's SoC in the kernel
	// package, e.g. "bcm2711-*.dtb" (Pi 4, Pi 400, CM4): the firmware
	// loads the one of the model it runs on. Both naming schemes are kept
	// (the firmware's bcm2710-* and the upstream kernel's bcm2837-*).
	DeviceTrees []string
	// Firmware is the GPU firmware the boot ROM or bootloader loads:
	// "start" (Pi 3 and Zero 2 W: bootcode.bin, start.elf, fixup.dat) or
	// "start4" (Pi 4: start4.elf, fixup4.dat), plus the variants config.txt
	// selects; "" for a Pi 5, whose firmware is in its EEPROM.
	Firmware string
}

// The SoC families: the Pi 3 and the Zero 2 W share theirs, so their
// images boot on each other.
var (
	piBCM2710 = &Pi{DeviceTrees: []string{"bcm2710-*.dtb", "bcm2837-*.dtb"}, Firmware: "start"}
	piBCM2711 = &Pi{DeviceTrees: []string{"bcm2711-*.dtb"}, Firmware: "start4"}
	piBCM2712 = &Pi{DeviceTrees: []string{"bcm2712*.dtb"}}
)

// Profiles are the supported boards.
var Profiles = []Profile{
	{"amd64", "x86-64 mini PCs and routers (UEFI)", "UEFI firmware → systemd-boot (EFI/BOOT/BOOTX64.EFI) → kernel", nil},
	{"arm64", "generic arm64 boards and VMs with UEFI (SystemReady)", "UEFI firmware → systemd-boot (EFI/BOOT/BOOTAA64.EFI) → kernel", nil},
	{"rpi3", "Raspberry Pi 3 Model B/B+, 3 A+", "boot ROM → bootcode.bin, start.elf → kernel", piBCM2710},
	{"rpi4", "Raspberry Pi 4 Model B, Pi 400, CM4 (bootloader EEPROM updates included)", "EEPROM bootloader → start4.elf → kernel", piBCM2711},
	{"rpi5", "Raspberry Pi 5, Pi 500, CM5", "EEPROM bootloader → kernel", piBCM2712},
	{"rpizero2w", "Raspberry Pi Zero 2 W (no Ethernet: use a USB Ethernet adapter)", "boot ROM → bootcode.bin, start.elf → kernel", piBCM2710},
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
