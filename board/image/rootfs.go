package image

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/homederp/homederp/board/gokrazyconfig"
	"github.com/homederp/homederp/board/squashfs"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// rootTree assembles the root file system:
//
//	/bin /dev /etc /lib /mnt /perm /proc /run /sys /tmp   mount points, empty
//	/var -> /perm/var   /etc/resolv.conf -> /tmp/resolv.conf
//	/gokrazy/init, /gokrazy/<dhcp, ntp, randomd>           gokrazy's programs
//	/user/<appliance, tailscaled, tailscale>              the instance's programs
//	/lib/modules/<kernel>/...                             the kernel package's modules
//	/etc/hostname /etc/hosts /etc/ssl/ca-bundle.pem
//	/etc/gokr-pw.txt (0400) /etc/http-port.txt /etc/https-port.txt
//	/etc/gokrazy/sbom.json /etc/gokrazy/mountdevices.json
//
// There is no /etc/localtime: Go programs then use UTC, which keeps the
// image independent of the build host's time zone.
func (b *builder) rootTree(bins []builtBin, kernelDir string, sbom []byte) (*squashfs.FS, error) {
	root := squashfs.New()
	for _, d := range []string{"/bin", "/dev", "/etc", "/etc/ssl", "/etc/gokrazy", "/lib", "/mnt", "/perm", "/proc", "/run", "/sys", "/tmp", "/gokrazy", "/user"} {
		if err := root.Mkdir(d, 0755); err != nil {
			return nil, err
		}
	}
	for _, md := range b.cfg.MountDevices {
		if err := root.Mkdir(md.Target, 0755); err != nil {
			return nil, err
		}
	}
	if err := root.Symlink("/var", "/perm/var"); err != nil {
		return nil, err
	}
	if err := root.Symlink("/etc/resolv.conf", "/tmp/resolv.conf"); err != nil {
		return nil, err
	}
	for _, bin := range bins {
		if err := root.AddHostFile(bin.dest, bin.file, 0755); err != nil {
			return nil, err
		}
	}
	if err := addTree(root, filepath.Join(kernelDir, "lib", "modules"), "/lib/modules"); err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}

	cas, err := caBundle()
	if err != nil {
		return nil, err
	}
	mountDevices := b.cfg.MountDevices
	if mountDevices == nil {
		mountDevices = []gokrazyconfig.MountDevice{}
	}
	md, err := json.Marshal(mountDevices)
	if err != nil {
		return nil, err
	}
	files := []struct {
		path    string
		mode    fs.FileMode
		content string
	}{
		{"/etc/hostname", 0644, b.cfg.Hostname},
		{"/etc/hosts", 0644, "127.0.0.1 localhost\n::1 localhost\n"},
		{"/etc/ssl/ca-bundle.pem", 0644, cas},
		{"/etc/http-port.txt", 0644, b.cfg.HTTPPort()},
		{"/etc/https-port.txt", 0644, b.cfg.HTTPSPort()},
		{"/etc/gokrazy/sbom.json", 0644, string(sbom)},
		{"/etc/gokrazy/mountdevices.json", 0644, string(md)},
	}
	if !b.noPassword() {
		files = append(files, struct {
			path    string
			mode    fs.FileMode
			content string
		}{"/etc/gokr-pw.txt", 0400, b.opts.HTTPPassword})
	}
	for _, f := range files {
		if err := root.AddBytes(f.path, f.mode, []byte(f.content)); err != nil {
			return nil, err
		}
	}
	extra, err := b.cfg.ExtraFiles()
	if err != nil {
		return nil, err
	}
	for dest, content := range extra {
		if root.Exists(dest) {
			return nil, fmt.Errorf("extra file %s: the image already has this path", dest)
		}
		if err := root.AddBytes(dest, 0644, []byte(content)); err != nil {
			return nil, err
		}
	}
	return root, nil
}

func (b *builder) noPassword() bool { return b.cfg.Update != nil && b.cfg.Update.NoPassword }

// addTree copies the host directory src to dest, directories 0755 and
// files 0644 (the module cache's read-only modes are not the image's).
func addTree(root *squashfs.FS, src, dest string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.ToSlash(filepath.Join(dest, rel))
		switch {
		case d.IsDir():
			return root.Mkdir(target, 0755)
		case d.Type().IsRegular():
			return root.AddHostFile(target, p, 0644)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return root.Symlink(target, link)
		}
		return fmt.Errorf("%s: unsupported file type %v", p, d.Type())
	})
}

// caBundle is the PEM bundle of Mozilla's trusted roots from
// golang.org/x/crypto/x509roots/fallback (the version go.mod pins, so the
// image does not depend on the build host's CA store). Roots that Mozilla
// distrusts after a date carry a constraint a PEM file cannot express;
// they are left out.
func caBundle() (string, error) {
	var sb strings.Builder
	n := 0
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if _, err := x509.ParseCertificate(r.Certificate); err != nil {
			return "", fmt.Errorf("CA bundle: %w", err)
		}
		if err := pem.Encode(&sb, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return "", err
		}
		n++
	}
	if n < 50 {
		return "", fmt.Errorf("CA bundle: only %d roots", n)
	}
	return sb.String(), nil
}
