package image

import (
	"slices"
	"testing"
)

func TestPiFirmware(t *testing.T) {
	for _, tc := range []struct {
		name, family, config string
		want                 []string
	}{
		{"Pi 3", "start", "arm_control=0x200\nkernel=vmlinuz\n", []string{"bootcode.bin", "start.elf", "fixup.dat"}},
		{"Pi 4", "start4", "kernel=vmlinuz\n", []string{"start4.elf", "fixup4.dat"}},
		{"Pi 5: firmware in the EEPROM", "", "start_x=1\n", nil},
		{"cut-down for gpu_mem=16", "start", "gpu_mem=16\n", []string{"bootcode.bin", "start.elf", "fixup.dat", "start_cd.elf", "fixup_cd.dat"}},
		{"more GPU memory is not cut down", "start", "gpu_mem=64\n", []string{"bootcode.bin", "start.elf", "fixup.dat"}},
		{"camera and debug on a Pi 4", "start4", "start_x=1\n[pi4]\nstart_debug=1 # a comment\n", []string{"start4.elf", "fixup4.dat", "start4x.elf", "fixup4x.dat", "start4db.elf", "fixup4db.dat"}},
		{"per-memory gpu_mem", "start4", "gpu_mem_1024=16\n", []string{"start4.elf", "fixup4.dat", "start4cd.elf", "fixup4cd.dat"}},
		{"commented out", "start", "#start_x=1\n", []string{"bootcode.bin", "start.elf", "fixup.dat"}},
		{"named files", "start", "start_file=start_x.elf\nfixup_file=fixup_x.dat\n", []string{"bootcode.bin", "start.elf", "fixup.dat", "start_x.elf", "fixup_x.dat"}},
	} {
		got, err := piFirmware(tc.family, tc.config)
		if err != nil {
			t.Errorf("%s: piFirmware: %v", tc.name, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: piFirmware(%q, %q): got %q, want %q", tc.name, tc.family, tc.config, got, tc.want)
		}
	}
	for _, bad := range []struct{ family, config string }{
		{"start", "start_file=../start.elf\n"},
		{"start", "fixup_file=\n"},
		{"start5", ""},
	} {
		if _, err := piFirmware(bad.family, bad.config); err == nil {
			t.Errorf("piFirmware(%q, %q): got no error", bad.family, bad.config)
		}
	}
}
