package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultTags are gokrazy's build tags: gokrazy code paths, and the pure
// Go resolver and user lookups (there is no libc on the box).
var DefaultTags = []string{"gokrazy", "netgo", "osusergo"}

// builtBin is a program built for the image.
type builtBin struct {
	pkg  string // import path, e.g. "tailscale.com/cmd/tailscaled"
	dest string // path in the root, e.g. "/user/tailscaled"
	file string // the built file on the host
}

// goEnv is the environment of every go command this package runs: the
// target platform, no cgo, and none of the caller's GOFLAGS (e.g.
// -mod=mod) that would change what is built.
func (b *builder) goEnv(extra ...string) []string {
	env := append(os.Environ(),
		"CGO_ENABLED=0",
		"GOOS=linux",
		"GOARCH="+b.cfg.GOARCH(),
		"GOFLAGS=-mod=readonly",
		"GOWORK=off",
	)
	return append(env, extra...)
}

func (b *builder) run(ctx context.Context, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.opts.ModuleDir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// DefaultLDFlags leave the symbol table and DWARF out of every program:
// a third of a Go binary, and nothing on the box reads them (panics and
// profiles use the runtime's own tables, which stay; the SBOM reads the
// build info, which stays too). A package's own -ldflags in GoBuildFlags
// come later and win.
const DefaultLDFlags = "-ldflags=-s -w"

// buildArgs are the go build flags for one package.
func (b *builder) buildArgs(pkg string) []string {
	pc := b.cfg.PackageConfig[pkg]
	tags := append(append([]string(nil), DefaultTags...), pc.GoBuildTags...)
	args := []string{"build", "-trimpath", "-buildvcs=false", "-tags=" + strings.Join(tags, ","), DefaultLDFlags}
	return append(args, pc.GoBuildFlags...)
}

// buildPackages builds every package of the instance from this module,
// so every program (tailscaled included) uses the versions pinned in
// go.mod. Packages with the same flags share one go build.
func (b *builder) buildPackages(ctx context.Context) ([]builtBin, error) {
	type group struct {
		args []string
		env  []string
		pkgs []string
	}
	groups := map[string]*group{}
	var keys []string
	add := func(pkg string) {
		args := b.buildArgs(pkg)
		env := b.cfg.PackageConfig[pkg].GoBuildEnvironment
		key := strings.Join(args, "\x00") + "\x01" + strings.Join(env, "\x00")
		g, ok := groups[key]
		if !ok {
			g = &group{args: args, env: env}
			groups[key] = g
			keys = append(keys, key)
		}
		g.pkgs = append(g.pkgs, pkg)
	}
	for _, pkg := range b.cfg.GokrazyPackagesOrDefault() {
		add(pkg)
	}
	for _, pkg := range b.cfg.Packages {
		add(pkg)
	}
	sort.Strings(keys)

	var out []builtBin
	for i, key := range keys {
		g := groups[key]
		dir := filepath.Join(b.work, fmt.Sprintf("bin%d", i))
		if err := os.MkdirAll(dir, 0755); err != nil {
			return nil, err
		}
		// go build -o dir/ names binaries after the last import path
		// element; build one at a time if two would collide.
		names := map[string]bool{}
		unique := true
		for _, pkg := range g.pkgs {
			n := defaultBasename(pkg)
			unique = unique && !names[n]
			names[n] = true
		}
		b.logf("building %s for linux/%s", strings.Join(g.pkgs, " "), b.cfg.GOARCH())
		if unique {
			args := append(append(append([]string(nil), g.args...), "-o", dir+"/"), g.pkgs...)
			if _, err := b.run(ctx, b.goEnv(g.env...), args...); err != nil {
				return nil, err
			}
		} else {
			for j, pkg := range g.pkgs {
				sub := filepath.Join(dir, fmt.Sprint(j))
				if err := os.MkdirAll(sub, 0755); err != nil {
					return nil, err
				}
				args := append(append(append([]string(nil), g.args...), "-o", sub+"/"), pkg)
				if _, err := b.run(ctx, b.goEnv(g.env...), args...); err != nil {
					return nil, err
				}
			}
		}
		for j, pkg := range g.pkgs {
			file := filepath.Join(dir, defaultBasename(pkg))
			if !unique {
				file = filepath.Join(dir, fmt.Sprint(j), defaultBasename(pkg))
			}
			if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("building %s produced no program: is it a main package?", pkg)
			}
			parent := "/user/"
			if b.isGokrazyPackage(pkg) {
				parent = "/gokrazy/"
			}
			out = append(out, builtBin{pkg: pkg, dest: parent + b.cfg.Basename(pkg), file: file})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dest < out[j].dest })
	return out, nil
}

func (b *builder) isGokrazyPackage(pkg string) bool {
	for _, p := range b.cfg.GokrazyPackagesOrDefault() {
		if p == pkg {
			return true
		}
	}
	return false
}

// defaultBasename is the file name go build -o dir/ gives a package.
func defaultBasename(pkg string) string {
	base := path.Base(pkg)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" && base != "v1" && base[1] != '0' {
		return path.Base(path.Dir(pkg))
	}
	return base
}

// moduleDir returns the directory of a module this module requires (a
// kernel, firmware or EEPROM package), downloading it if needed. The
// version is the one in go.mod.
func (b *builder) moduleDir(ctx context.Context, module string) (string, string, error) {
	out, err := b.run(ctx, b.goEnv(), "mod", "download", "-json", module)
	var info struct {
		Path, Version, Dir, Error string
	}
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		err = fmt.Errorf("%s", info.Error)
	}
	if err != nil {
		return "", "", fmt.Errorf("locating %s (is it required in go.mod? add it with go get %s@<version> and a blank import in board/pins.go): %w", module, module, err)
	}
	if info.Dir == "" {
		return "", "", fmt.Errorf("locating %s: go mod download gave no directory", module)
	}
	return info.Dir, info.Version, nil
}
