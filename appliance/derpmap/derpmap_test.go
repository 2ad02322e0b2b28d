package derpmap

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/homederp/homederp/appliance/config"
	"tailscale.com/tailcfg"
)

func testConfig() config.Config {
	c := config.Default()
	c.Hostname = "derp.example.com"
	return c
}

func TestRenderParsesBack(t *testing.T) {
	der := []byte("not really a certificate, but hashing does not care")
	b, err := JSON(Map(testConfig(), Options{PinnedCert: der}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "IPv4") || strings.Contains(string(b), "IPv6") {
		t.Errorf("map carries an address field for a dynamic address:\n%s", b)
	}
	var m tailcfg.DERPMap
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("map does not parse back: %v", err)
	}
	sum := sha256.Sum256(der)
	want := &tailcfg.DERPRegion{
		RegionID:   900,
		RegionCode: "home",
		RegionName: "Home",
		Nodes: []*tailcfg.DERPNode{{
			Name:     "900a",
			RegionID: 900,
			HostName: "derp.example.com",
			DERPPort: 12345,
			STUNPort: 3478,
			CertName: "sha256-raw:" + hex.EncodeToString(sum[:]),
		}},
	}
	if diff := cmp.Diff(map[int]*tailcfg.DERPRegion{900: want}, m.Regions); diff != "" {
		t.Errorf("regions (-want +got):\n%s", diff)
	}
	for id, r := range m.Regions {
		for _, n := range r.Nodes {
			if n.RegionID != id {
				t.Errorf("node %s: RegionID %d, want %d", n.Name, n.RegionID, id)
			}
		}
	}
}

func TestRenderVariants(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(*config.Config)
		opts   Options
		want   func(*tailcfg.DERPNode) bool
	}{
		{"insecure instead of pin", func(c *config.Config) { c.Cert.InsecureForTests = true }, Options{PinnedCert: []byte("x")},
			func(n *tailcfg.DERPNode) bool { return n.InsecureForTests && n.CertName == "" }},
		{"trusted cert: no pin", func(c *config.Config) { c.Cert.Mode = config.CertManual }, Options{},
			func(n *tailcfg.DERPNode) bool { return !n.InsecureForTests && n.CertName == "" }},
		{"insecure ignored for trusted cert", func(c *config.Config) { c.Cert.Mode = config.CertManual; c.Cert.InsecureForTests = true }, Options{},
			func(n *tailcfg.DERPNode) bool { return !n.InsecureForTests }},
		{"no IPv4", func(*config.Config) {}, Options{NoIPv4: true},
			func(n *tailcfg.DERPNode) bool { return n.IPv4 == "none" && n.IPv6 == "" }},
		{"custom ports and region", func(c *config.Config) { c.Relay.DERPPort, c.Relay.STUNPort, c.Region.ID = 443, 3479, 950 }, Options{},
			func(n *tailcfg.DERPNode) bool { return n.DERPPort == 443 && n.STUNPort == 3479 && n.RegionID == 950 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.modify(&c)
			r := Region(c, tt.opts)
			if !tt.want(r.Nodes[0]) {
				t.Errorf("node: got %+v", r.Nodes[0])
			}
		})
	}
}
