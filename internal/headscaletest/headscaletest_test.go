package headscaletest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/internal/testenv"
	"tailscale.com/tstest/integration"
	"tailscale.com/types/logger"
)

func TestMain(m *testing.M) {
	os.Setenv("TS_DISABLE_UPNP", "true")
	os.Exit(m.Run())
}

// TestHeadscale is the test bed on its own: headscale loads a derp.paths
// file, two nodes log in with a pre-auth key and reach each other over
// that map's DERP server, and headscale stops cleanly.
func TestHeadscale(t *testing.T) {
	testenv.NeedLong(t)
	m := integration.RunDERPAndSTUN(t, logger.Discard, "127.0.0.1")
	y, err := derpmap.YAML(m)
	if err != nil {
		t.Fatal(err)
	}
	paths := filepath.Join(t.TempDir(), "derp.yaml")
	if err := os.WriteFile(paths, y, 0644); err != nil {
		t.Fatal(err)
	}
	hs := Start(t, Options{DERPPaths: []string{paths}})
	user := hs.CreateUser(t, "home")
	key := hs.PreAuthKey(t, user)

	env := []string{"TS_DEBUG_NEVER_DIRECT_UDP=1"}
	a, b := StartNode(t, "node-a", env), StartNode(t, "node-b", env)
	a.Up(t, hs.URL, key)
	b.Up(t, hs.URL, key)
	if keys := hs.NodeKeys(t); !slices.Contains(keys, a.NodeKey(t)) || !slices.Contains(keys, b.NodeKey(t)) {
		t.Errorf("headscale nodes list: %v, want both nodes' keys", keys)
	}
	out, err := a.PingVia(t, b, "DERP(test)", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tailscale ping: %s", out)
	hs.Stop(t)
}
