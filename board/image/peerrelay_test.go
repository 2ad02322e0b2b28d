package image

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/board/profile"
	"github.com/homederp/homederp/internal/testenv"
)

// TestTailscaledHasPeerRelay: every board's tailscaled, built with the
// flags its gokrazy instance gives it, includes upstream's peer relay
// server (a ts_omit_relayserver tag would silently drop it, and the web
// UI's peer relay switch would do nothing).
func TestTailscaledHasPeerRelay(t *testing.T) {
	testenv.NeedCommand(t, "go")
	mod := moduleDir(t)
	const pkg, feature = "tailscale.com/cmd/tailscaled", "tailscale.com/feature/relayserver"
	for _, p := range profile.Profiles {
		t.Run(p.Name, func(t *testing.T) {
			cfg, err := p.Load(filepath.Join(mod, "gokrazy-config"))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(cfg.Packages, pkg) {
				t.Fatalf("the %s instance has no %s", p.Name, pkg)
			}
			b := &builder{opts: Options{ModuleDir: mod}, cfg: cfg}
			// go list takes go build's flags; the build's own are
			// "build", "-trimpath", ...
			args := append([]string{"list", "-deps"}, b.buildArgs(pkg)[1:]...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := b.run(ctx, b.goEnv(b.cfg.PackageConfig[pkg].GoBuildEnvironment...), append(args, pkg)...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(strings.Fields(string(out)), feature) {
				t.Errorf("%s for %s (go %s) does not include %s", pkg, p.Name, strings.Join(args, " "), feature)
			}
		})
	}
}
