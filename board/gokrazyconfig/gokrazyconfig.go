// Package gokrazyconfig reads a gokrazy instance's config.json, the file
// upstream `gok` reads, so that gokrazy-config/ is the one source of truth
// for both `gok` and homederp's own image tool.
//
// The types mirror github.com/gokrazy/internal/config (which cannot be
// imported) field for field, so any file gok accepts decodes here. Fields
// this tool does not implement are rejected by Validate with a clear
// error instead of being silently ignored.
package gokrazyconfig

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
)

// Update mirrors gok's UpdateStruct.
type Update struct {
	Hostname     string `json:",omitempty"` // only for pushing updates, e.g. "homederp.lan"
	UseTLS       string `json:",omitempty"` // "", "off" (this tool serves no TLS on gokrazy's web interface)
	NoPassword   bool   `json:",omitempty"`
	HTTPPort     string `json:",omitempty"` // e.g. "8080": /etc/http-port.txt
	HTTPSPort    string `json:",omitempty"` // e.g. "8443": /etc/https-port.txt
	HTTPPassword string `json:",omitempty"` // normally absent: kept out of the repository
	CertPEM      string `json:",omitempty"`
	KeyPEM       string `json:",omitempty"`
}

// PackageConfig mirrors gok's per-package configuration.
type PackageConfig struct {
	GoBuildEnvironment []string          `json:",omitempty"` // e.g. ["GOAMD64=v2"]
	GoBuildFlags       []string          `json:",omitempty"` // e.g. ["-ldflags=-s -w"]
	GoBuildTags        []string          `json:",omitempty"` // added to gokrazy,netgo,osusergo
	ExtraFilePaths     map[string]string `json:",omitempty"`
	ExtraFileContents  map[string]string `json:",omitempty"` // e.g. {"/etc/motd": "hello\n"}
	Basename           string            `json:",omitempty"` // binary name, e.g. "derp"
	Environment        []string          `json:",omitempty"` // e.g. ["TS_DEBUG_X=1"]
	CommandLineFlags   []string          `json:",omitempty"` // e.g. ["--tun=userspace-networking"]
	DontStart          bool              `json:",omitempty"`
	WaitForClock       bool              `json:",omitempty"`
}

// MountDevice mirrors gok's MountDevice.
type MountDevice struct {
	Source  string // e.g. PARTUUID=abcdef
	Type    string // e.g. ext4
	Target  string // e.g. /mnt/usb
	Options string
}

// Config mirrors gok's config.Struct.
type Config struct {
	Hostname                   string
	DeviceType                 string                   `json:",omitempty"`
	Update                     *Update                  `json:",omitempty"`
	Environment                []string                 `json:",omitempty"` // e.g. ["GOOS=linux", "GOARCH=arm64"]
	Packages                   []string                 // main packages under /user
	PackageConfig              map[string]PackageConfig `json:",omitempty"`
	SerialConsole              string                   `json:",omitempty"` // e.g. "ttyS0,115200"
	GokrazyPackages            *[]string                `json:",omitempty"` // under /gokrazy
	KernelPackage              *string                  `json:",omitempty"`
	FirmwarePackage            *string                  `json:",omitempty"`
	EEPROMPackage              *string                  `json:",omitempty"`
	KernelExtraArgs            []string                 `json:",omitempty"`
	BootloaderExtraLines       []string                 `json:",omitempty"`
	BootloaderExtraEEPROM      []string                 `json:",omitempty"`
	MountDevices               []MountDevice            `json:",omitempty"`
	InternalCompatibilityFlags json.RawMessage          `json:",omitempty"`

	// Path is the file the configuration was read from.
	Path string `json:"-"`
	// Hash is the SHA-256 of that file, for the SBOM.
	Hash string `json:"-"`
}

// Load reads and validates a config.json.
func Load(p string) (*Config, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", p, err)
	}
	c.Path = p
	sum := sha256.Sum256(b)
	c.Hash = hex.EncodeToString(sum[:])
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &c, nil
}

// Validate reports settings that are malformed or that this tool does not
// implement (use gok for those).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Hostname == "" || strings.ContainsAny(c.Hostname, " /\x00") {
		bad("Hostname %q is not a host name", c.Hostname)
	}
	for _, kv := range c.Environment {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			bad("malformed Environment entry %q, want key=value", kv)
		} else if k != "GOOS" && k != "GOARCH" {
			bad("Environment %q: this tool only reads GOOS and GOARCH", kv)
		}
	}
	if g := c.env("GOOS"); g != "" && g != "linux" {
		bad("GOOS=%s: gokrazy is Linux", g)
	}
	switch c.GOARCH() {
	case "amd64", "arm64":
	default:
		bad("GOARCH=%s: this tool builds amd64 and arm64 images", c.GOARCH())
	}
	if c.DeviceType != "" {
		bad("DeviceType %q: only the default (GPT) layout is supported", c.DeviceType)
	}
	if len(c.BootloaderExtraEEPROM) > 0 {
		bad("BootloaderExtraEEPROM is not supported (the EEPROM image is copied as released)")
	}
	if u := c.Update; u != nil {
		if u.UseTLS != "" && u.UseTLS != "off" {
			bad("Update.UseTLS %q: TLS for gokrazy's web interface is not supported", u.UseTLS)
		}
		if u.CertPEM != "" || u.KeyPEM != "" {
			bad("Update.CertPEM/KeyPEM are not supported")
		}
	}
	if len(c.Packages) == 0 {
		bad("no Packages")
	}
	seen := map[string]string{}
	for _, pkg := range append(append([]string(nil), c.Packages...), c.GokrazyPackagesOrDefault()...) {
		base := c.Basename(pkg)
		if other, ok := seen[base]; ok {
			bad("packages %s and %s both install as %q; set PackageConfig.Basename", other, pkg, base)
		}
		seen[base] = pkg
	}
	for pkg, pc := range c.PackageConfig {
		if len(pc.ExtraFilePaths) > 0 {
			bad("PackageConfig[%s].ExtraFilePaths is not supported; use ExtraFileContents", pkg)
		}
		for dest := range pc.ExtraFileContents {
			if !path.IsAbs(dest) || path.Clean(dest) != dest || dest == "/" {
				bad("PackageConfig[%s].ExtraFileContents: %q is not a clean absolute path", pkg, dest)
			} else if dest == "/perm" || strings.HasPrefix(dest, "/perm/") {
				bad("PackageConfig[%s].ExtraFileContents: %s: /perm is not part of the image", pkg, dest)
			}
		}
		for _, kv := range append(append([]string(nil), pc.Environment...), pc.GoBuildEnvironment...) {
			if !strings.Contains(kv, "=") {
				bad("PackageConfig[%s]: malformed environment entry %q", pkg, kv)
			}
		}
	}
	for _, md := range c.MountDevices {
		if !strings.HasPrefix(md.Target, "/mnt/") || strings.Count(md.Target, "/") != 2 {
			bad("MountDevices target %q: this tool supports /mnt/<name> targets only", md.Target)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) env(key string) string {
	for _, kv := range c.Environment {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// GOARCH is the target architecture; gok defaults to arm64.
func (c *Config) GOARCH() string {
	if a := c.env("GOARCH"); a != "" {
		return a
	}
	return "arm64"
}

// SerialConsoleOrDefault is gok's default: serial0,115200.
func (c *Config) SerialConsoleOrDefault() string {
	if c.SerialConsole == "" || c.SerialConsole == "UART0" {
		return "serial0,115200"
	}
	return c.SerialConsole
}

// GokrazyPackagesOrDefault lists the packages installed under /gokrazy.
func (c *Config) GokrazyPackagesOrDefault() []string {
	if c.GokrazyPackages == nil {
		return []string{
			"github.com/gokrazy/gokrazy/cmd/dhcp",
			"github.com/gokrazy/gokrazy/cmd/ntp",
			"github.com/gokrazy/gokrazy/cmd/randomd",
			"github.com/gokrazy/gokrazy/cmd/heartbeat",
		}
	}
	var out []string
	for _, p := range *c.GokrazyPackages {
		if strings.TrimSpace(p) != "" {
			out = append(out, p)
		}
	}
	return out
}

func orDefault(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

// KernelPackageOrDefault, FirmwarePackageOrDefault and
// EEPROMPackageOrDefault follow gok: unset means the Raspberry Pi
// packages, an empty string means none.
func (c *Config) KernelPackageOrDefault() string {
	return orDefault(c.KernelPackage, "github.com/gokrazy/kernel.rpi")
}

func (c *Config) FirmwarePackageOrDefault() string {
	return orDefault(c.FirmwarePackage, "github.com/gokrazy/firmware")
}

func (c *Config) EEPROMPackageOrDefault() string {
	return orDefault(c.EEPROMPackage, "github.com/gokrazy/rpi-eeprom")
}

// Basename is the file name pkg is installed as: the last path element
// (skipping a /vN major version suffix) unless PackageConfig overrides it.
func (c *Config) Basename(pkg string) string {
	if b := c.PackageConfig[pkg].Basename; b != "" {
		return b
	}
	base := path.Base(pkg)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" && base != "v1" && base[1] != '0' {
		return path.Base(path.Dir(pkg))
	}
	return base
}

// HTTPPort and HTTPSPort are gokrazy's web interface ports.
func (c *Config) HTTPPort() string {
	if c.Update != nil && c.Update.HTTPPort != "" {
		return c.Update.HTTPPort
	}
	return "80"
}

func (c *Config) HTTPSPort() string {
	if c.Update != nil && c.Update.HTTPSPort != "" {
		return c.Update.HTTPSPort
	}
	return "443"
}

// ExtraFiles returns every ExtraFileContents entry (destination →
// content), failing on two packages claiming one path.
func (c *Config) ExtraFiles() (map[string]string, error) {
	out := map[string]string{}
	owner := map[string]string{}
	pkgs := make([]string, 0, len(c.PackageConfig))
	for pkg := range c.PackageConfig {
		pkgs = append(pkgs, pkg)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		for dest, content := range c.PackageConfig[pkg].ExtraFileContents {
			if o, ok := owner[dest]; ok {
				return nil, fmt.Errorf("extra file %s: set by both %s and %s", dest, o, pkg)
			}
			owner[dest] = pkg
			out[dest] = content
		}
	}
	return out, nil
}
