package image

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// sbom is /etc/gokrazy/sbom.json, which gokrazy shows (as its hash) on the
// status page: what went into the image.
type sbom struct {
	ConfigHash struct {
		Path string `json:"path"` // e.g. "gokrazy-config/amd64/config.json"
		Hash string `json:"hash"` // SHA-256 of that file
	} `json:"config_hash"`
	GoPackages []sbomPackage `json:"go_packages"`
	Modules    []Module      `json:"modules"`                   // kernel, firmware, EEPROM
	Debian     []Module      `json:"debian_packages,omitempty"` // e.g. systemd-boot-efi:amd64 252.39-1~deb12u2
	Files      []sbomFile    `json:"files"`                     // other inputs, e.g. the EFI loader
}

type sbomPackage struct {
	Path      string `json:"path"`       // e.g. "tailscale.com/cmd/tailscaled"
	BuildInfo string `json:"build_info"` // as `go version -m` prints it
}

// Module is a versioned input: a Go module, or a Debian package.
type Module struct {
	Path    string `json:"path"`    // e.g. "github.com/gokrazy/kernel.amd64", "systemd-boot-efi:amd64"
	Version string `json:"version"` // e.g. "v0.0.0-20260705070735-de680abf072b", "252.39-1~deb12u2"
}

type sbomFile struct {
	Path   string `json:"path"` // independent of the build host, e.g. "systemd-boot-efi:amd64/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	SHA256 string `json:"sha256"`
}

// sbomJSON renders the SBOM with its hash, in the shape gokrazy's
// ReadSBOM reads: {"sbom_hash": ..., "sbom": ...}.
func (s *sbom) json() ([]byte, string, error) {
	inner, err := json.MarshalIndent(s, "", "    ")
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(inner)
	hash := hex.EncodeToString(sum[:])
	out, err := json.MarshalIndent(struct {
		Hash string          `json:"sbom_hash"`
		SBOM json.RawMessage `json:"sbom"`
	}{hash, inner}, "", "    ")
	if err != nil {
		return nil, "", err
	}
	return append(out, '\n'), hash, nil
}

func readBuildInfo(file string) (string, error) {
	bi, err := buildinfo.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading build info of %s: %w", file, err)
	}
	return bi.String(), nil
}
