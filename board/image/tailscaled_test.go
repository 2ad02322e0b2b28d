package image

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/homederp/homederp/board/profile"
	"tailscale.com/feature/featuretags"
)

// boxFeatures are the tailscaled features the box relies on, and why. The
// gokrazy instances build tailscaled with ts_omit_* tags for what the box
// never uses (gokrazy-config/README.md); none of these may be among them,
// nor anything they depend on.
var boxFeatures = map[featuretags.FeatureTag]string{
	"relayserver": "the web UI's peer relay switch (the RelayServerPort pref, debug-peer-relay-sessions)",
	"ipnbus":      "the web UI's login, which watches the IPN bus",
	"netstack":    "--tun=userspace-networking",
	"osrouter":    "a kernel TUN (--tun=tailscale0) instead of netstack, as before the tags",
	"health":      "the health warnings the web UI shows",
	"logtail":     "its logs to Tailscale unless --no-logs-no-support (gokrazy-config/README.md)",
	"tailnetlock": "checking its peers' signatures in a tailnet with Tailnet Lock",
}

// TestTailscaledFeatures checks each board's ts_omit_* tags for
// tailscaled against tailscale's own registry of them: every tag names a
// feature (a misspelt tag would omit nothing and say nothing), no feature
// the box relies on is omitted, and no kept feature depends on an omitted
// one (as tailscale's cmd/featuretags refuses).
func TestTailscaledFeatures(t *testing.T) {
	mod := moduleDir(t)
	const pkg = "tailscale.com/cmd/tailscaled"
	for _, p := range profile.Profiles {
		t.Run(p.Name, func(t *testing.T) {
			cfg, err := p.Load(filepath.Join(mod, "gokrazy-config"))
			if err != nil {
				t.Fatal(err)
			}
			omitted := map[featuretags.FeatureTag]bool{}
			for _, tag := range cfg.PackageConfig[pkg].GoBuildTags {
				name, ok := strings.CutPrefix(tag, "ts_omit_")
				if !ok {
					continue
				}
				f := featuretags.FeatureTag(name)
				if _, known := featuretags.Features[f]; !known || !f.IsOmittable() {
					t.Errorf("GoBuildTags: %s names no omittable feature of tailscale.com/feature/featuretags", tag)
				}
				omitted[f] = true
			}
			if len(omitted) == 0 {
				t.Fatalf("GoBuildTags of %s omit nothing: got %q", pkg, cfg.PackageConfig[pkg].GoBuildTags)
			}
			for f, why := range boxFeatures {
				for dep := range featuretags.Requires(f) {
					if omitted[dep] {
						t.Errorf("GoBuildTags: ts_omit_%s drops %s, which the box needs for %s", dep, f, why)
					}
				}
			}
			for f := range omitted {
				var kept []string
				for dependent := range featuretags.RequiredBy(f) {
					if !omitted[dependent] {
						kept = append(kept, string(dependent))
					}
				}
				sort.Strings(kept)
				if len(kept) > 0 {
					t.Errorf("GoBuildTags: ts_omit_%s, but %s (which need it) are kept", f, strings.Join(kept, ", "))
				}
			}
		})
	}
}
