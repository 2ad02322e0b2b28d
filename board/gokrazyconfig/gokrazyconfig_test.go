package gokrazyconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const valid = `{
    "Hostname": "homederp",
    "Update": {"HTTPPort": "8080"},
    "Environment": ["GOOS=linux", "GOARCH=amd64"],
    "Packages": ["github.com/homederp/homederp/appliance", "tailscale.com/cmd/tailscaled"],
    "PackageConfig": {
        "tailscale.com/cmd/tailscaled": {"CommandLineFlags": ["--tun=userspace-networking"], "WaitForClock": true}
    },
    "KernelPackage": "github.com/gokrazy/kernel.amd64",
    "FirmwarePackage": "",
    "EEPROMPackage": ""
}`

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	c, err := Load(write(t, valid))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ what, got, want string }{
		{"GOARCH", c.GOARCH(), "amd64"},
		{"HTTPPort", c.HTTPPort(), "8080"},
		{"HTTPSPort", c.HTTPSPort(), "443"},
		{"SerialConsole", c.SerialConsoleOrDefault(), "serial0,115200"},
		{"kernel", c.KernelPackageOrDefault(), "github.com/gokrazy/kernel.amd64"},
		{"firmware", c.FirmwarePackageOrDefault(), ""},
		{"Basename", c.Basename("tailscale.com/cmd/tailscaled"), "tailscaled"},
		{"Basename /v2", c.Basename("example.com/cmd/tool/v2"), "tool"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	if len(c.Hash) != 64 {
		t.Errorf("Hash: got %q", c.Hash)
	}
	if got := c.GokrazyPackagesOrDefault(); len(got) != 4 {
		t.Errorf("default gokrazy packages: got %v", got)
	}
}

// TestDefaults follows gok: no KernelPackage means the Raspberry Pi
// packages, and GOARCH defaults to arm64.
func TestDefaults(t *testing.T) {
	c, err := Load(write(t, `{"Hostname": "x", "Packages": ["example.com/x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.GOARCH() != "arm64" || c.KernelPackageOrDefault() != "github.com/gokrazy/kernel.rpi" || c.EEPROMPackageOrDefault() != "github.com/gokrazy/rpi-eeprom" {
		t.Errorf("defaults: GOARCH %s kernel %s eeprom %s", c.GOARCH(), c.KernelPackageOrDefault(), c.EEPROMPackageOrDefault())
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, edit, want string
	}{
		{"typo in a field", `"Hostname": "homederp",` + "\n" + `"Hostnme": "x",`, "unknown field"},
		{"no hostname", `"Hostname": "",`, "not a host name"},
		{"bad environment", `"Environment": ["GOOS=linux", "GOARCH"],`, "malformed Environment"},
		{"unsupported arch", `"Environment": ["GOOS=linux", "GOARCH=riscv64"],`, "riscv64"},
		{"device type", `"Hostname": "homederp", "DeviceType": "odroidhc1",`, "DeviceType"},
		{"extra file in perm", `"Hostname": "homederp", "PackageConfig": {"x": {"ExtraFileContents": {"/perm/x": "y"}}},`, "/perm is not part of the image"},
		{"extra file paths", `"Hostname": "homederp", "PackageConfig": {"x": {"ExtraFilePaths": {"/etc/x": "x"}}},`, "ExtraFilePaths is not supported"},
		{"basename clash", `"Hostname": "homederp", "PackageConfig": {"tailscale.com/cmd/tailscaled": {"Basename": "appliance"}},`, "both install as"},
		{"TLS", `"Hostname": "homederp", "Update": {"UseTLS": "self-signed"},`, "UseTLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := valid
			switch {
			case strings.HasPrefix(tc.edit, `"Environment"`):
				content = strings.Replace(content, `"Environment": ["GOOS=linux", "GOARCH=amd64"],`, tc.edit, 1)
			case strings.HasPrefix(tc.edit, `"Hostname": "",`):
				content = strings.Replace(content, `"Hostname": "homederp",`, tc.edit, 1)
			default:
				content = strings.Replace(content, `"Hostname": "homederp",`, tc.edit, 1)
				// Later keys of the same name replace the earlier ones in
				// encoding/json, so drop the originals the edit overrides.
				if strings.Contains(tc.edit, `"PackageConfig"`) {
					content = strings.Replace(content, `"PackageConfig": {
        "tailscale.com/cmd/tailscaled": {"CommandLineFlags": ["--tun=userspace-networking"], "WaitForClock": true}
    },`, "", 1)
				}
				if strings.Contains(tc.edit, `"Update"`) {
					content = strings.Replace(content, `"Update": {"HTTPPort": "8080"},`, "", 1)
				}
			}
			_, err := Load(write(t, content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestExtraFiles(t *testing.T) {
	c := &Config{PackageConfig: map[string]PackageConfig{
		"a": {ExtraFileContents: map[string]string{"/etc/a": "1"}},
		"b": {ExtraFileContents: map[string]string{"/etc/b": "2"}},
	}}
	got, err := c.ExtraFiles()
	if err != nil || len(got) != 2 || got["/etc/a"] != "1" {
		t.Errorf("ExtraFiles: got %v, %v", got, err)
	}
	c.PackageConfig["b"] = PackageConfig{ExtraFileContents: map[string]string{"/etc/a": "2"}}
	if _, err := c.ExtraFiles(); err == nil {
		t.Errorf("ExtraFiles with two packages claiming /etc/a: got nil error")
	}
}
