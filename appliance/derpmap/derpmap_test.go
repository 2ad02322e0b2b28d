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

func TestRenderBehindReverseProxy(t *testing.T) {
	proxied := func(host string) config.Config {
		c := testConfig()
		c.ReverseProxy = config.ReverseProxy{Enabled: true, PublicHost: host, PublicPort: 443, Trusted: []string{"192.168.1.2"}}
		return c
	}
	for _, tt := range []struct {
		name string
		c    config.Config
		want []*tailcfg.DERPNode
	}{
		{"on the box's hostname: one node at the proxy's port, no pin", proxied(""), []*tailcfg.DERPNode{
			{Name: "900a", RegionID: 900, HostName: "derp.example.com", DERPPort: 443, STUNPort: 3478},
		}},
		{"on another host: its DERP node, and the box for STUN", proxied("relay.example.net"), []*tailcfg.DERPNode{
			{Name: "900a", RegionID: 900, HostName: "relay.example.net", DERPPort: 443, STUNPort: -1},
			{Name: "900a-stun", RegionID: 900, HostName: "derp.example.com", STUNPort: 3478, STUNOnly: true, IPv4: "none"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{PinnedCert: []byte("the box's self-signed certificate")}
			if len(tt.want) > 1 {
				opts.NoIPv4 = true // the home line's CGNAT, not the proxy's
			}
			m := Map(tt.c, opts)
			if diff := cmp.Diff(tt.want, m.Regions[900].Nodes); diff != "" {
				t.Errorf("nodes (-want +got):\n%s", diff)
			}
			y, err := YAML(m)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseYAML(strings.NewReader(string(y)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, back.Regions[900].Nodes); diff != "" {
				t.Errorf("nodes after headscale's YAML decoding (-want +got):\n%s\n%s", diff, y)
			}
			if got, want := PublicURL(tt.c), "https://"+tt.want[0].HostName+":443/derpmap.json"; got != want {
				t.Errorf("PublicURL: got %q, want %q", got, want)
			}
		})
	}
}
