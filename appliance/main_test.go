package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/relay/relaytest"
)

func itoa(i int) string { return strconv.Itoa(i) }

func TestDevRunTwice(t *testing.T) {
	bin := devbox.Build(t)
	stateDir := t.TempDir()
	derpPort, stunPort := devbox.FreePort(t), devbox.FreePort(t)
	opts := devbox.Options{StateDir: stateDir, DERPPort: derpPort, STUNPort: stunPort}

	box := devbox.Start(t, bin, opts)
	for _, want := range []string{
		"https://localhost:" + itoa(derpPort) + "/derp",
		"udp 127.0.0.1:" + itoa(stunPort),
		filepath.Join(stateDir, "derpmap.json"),
	} {
		if !strings.Contains(box.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, box.Summary)
		}
	}
	m1 := devbox.ReadMap(t, stateDir)
	region := m1.Regions[900]
	if region == nil || len(region.Nodes) != 1 {
		t.Fatalf("map: got %+v, want region 900 with one node", m1)
	}
	if n := region.Nodes[0]; n.DERPPort != derpPort || n.STUNPort != stunPort || !strings.HasPrefix(n.CertName, "sha256-raw:") || n.IPv4 != "" {
		t.Errorf("node: got %+v", n)
	}

	// A real client connects with nothing but the written map.
	relaytest.Exchange(t, relaytest.Connect(t, region), relaytest.Connect(t, region))
	key1, err := os.ReadFile(filepath.Join(stateDir, "derper.key"))
	if err != nil {
		t.Fatal(err)
	}
	box.Stop(t)

	box = devbox.Start(t, bin, opts)
	m2 := devbox.ReadMap(t, stateDir)
	if got, want := m2.Regions[900].Nodes[0].CertName, region.Nodes[0].CertName; got != want {
		t.Errorf("second run: CertName %q, want the first run's %q", got, want)
	}
	key2, _ := os.ReadFile(filepath.Join(stateDir, "derper.key"))
	if string(key1) != string(key2) {
		t.Error("second run made a new DERP key")
	}
	box.Stop(t)
}
