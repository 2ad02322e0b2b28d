package derpmap

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tailscale/hujson"
	"gopkg.in/yaml.v3"
	"tailscale.com/tailcfg"
)

// TestYAMLRoundTrip decodes the derp.paths YAML the way headscale does
// (gopkg.in/yaml.v3 into tailcfg.DERPMap) and wants back exactly the map
// that was rendered, for every variant the box emits.
func TestYAMLRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(*tailcfg.DERPMap)
	}{
		{"pinned self-signed", func(*tailcfg.DERPMap) {}},
		{"insecure for old clients", func(m *tailcfg.DERPMap) {
			n := m.Regions[900].Nodes[0]
			n.CertName, n.InsecureForTests = "", true
		}},
		{"no public IPv4", func(m *tailcfg.DERPMap) { m.Regions[900].Nodes[0].IPv4 = "none" }},
		{"omit default regions", func(m *tailcfg.DERPMap) { m.OmitDefaultRegions = true }},
		{"numeric-looking names", func(m *tailcfg.DERPMap) {
			r := m.Regions[900]
			r.RegionCode, r.RegionName, r.Nodes[0].Name = "900", "true", "0x10"
		}},
		{"two regions and home params", func(m *tailcfg.DERPMap) {
			m.Regions[950] = &tailcfg.DERPRegion{RegionID: 950, RegionCode: "b", RegionName: "B", Latitude: 52.5, Longitude: -13.25,
				Nodes: []*tailcfg.DERPNode{{Name: "950a", RegionID: 950, HostName: "b.example.com", DERPPort: 443, STUNPort: -1}}}
			m.HomeParams = &tailcfg.DERPHomeParams{RegionScore: map[int]float64{950: 0.5}}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := Map(testConfig(), Options{PinnedCert: []byte("cert")})
			tt.modify(want)
			b, err := YAML(want)
			if err != nil {
				t.Fatal(err)
			}
			var got tailcfg.DERPMap
			if err := yaml.Unmarshal(b, &got); err != nil {
				t.Fatalf("yaml.v3 cannot read the rendered file: %v\n%s", err, b)
			}
			if diff := cmp.Diff(want, &got); diff != "" {
				t.Errorf("round trip through yaml.v3 (-want +got):\n%s\nYAML:\n%s", diff, b)
			}
			for _, k := range yamlKeys(t, b) {
				if k != strings.ToLower(k) {
					t.Errorf("key %q is capitalised; headscale would drop it", k)
				}
			}
		})
	}
}

func TestYAMLHasNoAddressForADynamicLine(t *testing.T) {
	b, err := YAML(Map(testConfig(), Options{PinnedCert: []byte("cert")}))
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?i)ipv[46]`).Match(b) {
		t.Errorf("YAML carries an address field for a dynamic address:\n%s", b)
	}
	for _, want := range []string{"regionid: 900", "derpport: 12345", "stunport: 3478", "hostname: derp.example.com", "certname: sha256-raw:"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("YAML lacks %q:\n%s", want, b)
		}
	}
}

// TestCapitalisedYAMLIsDropped documents why the lowercase keys matter:
// the same map with Tailscale's JSON spelling loads as nothing.
func TestCapitalisedYAMLIsDropped(t *testing.T) {
	j, err := JSON(Map(testConfig(), Options{}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseYAML(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Regions) != 0 {
		t.Errorf("JSON read as YAML: got %d regions, want 0 (if yaml.v3 learned case folding, revisit the checker)", len(m.Regions))
	}
}

func yamlKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i < len(n.Content); i += 2 {
				keys = append(keys, n.Content[i].Value)
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	return keys
}

func TestPolicyBlock(t *testing.T) {
	for _, omit := range []bool{false, true} {
		m := Map(testConfig(), Options{PinnedCert: []byte("cert"), OmitDefaultRegions: omit})
		b, err := PolicyBlock(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(`"derpMap": {`)) || !bytes.HasSuffix(b, []byte("},\n")) {
			t.Errorf("PolicyBlock: got\n%s\nwant a \"derpMap\" member ending in a comma", b)
		}
		if got := bytes.Contains(b, []byte(`"OmitDefaultRegions": true`)); got != omit {
			t.Errorf("PolicyBlock(omit=%v): OmitDefaultRegions present = %v\n%s", omit, got, b)
		}
		// It must sit in a policy file among other members.
		file := append(append([]byte("{\n  // tailnet policy\n  \"acls\": [],\n  "), b...), []byte("}\n")...)
		std, err := hujson.Standardize(file)
		if err != nil {
			t.Fatalf("policy file with the block is not HuJSON: %v\n%s", err, file)
		}
		var pf struct{ DERPMap *tailcfg.DERPMap }
		if err := json.Unmarshal(std, &pf); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, pf.DERPMap); diff != "" {
			t.Errorf("policy file's derpMap (-want +got):\n%s", diff)
		}
	}
}

func TestPublicURLAndHeadscaleSnippets(t *testing.T) {
	c := testConfig()
	if got, want := PublicURL(c), "https://derp.example.com:12345/derpmap.json"; got != want {
		t.Errorf("PublicURL: got %q, want %q", got, want)
	}
	c.Hostname, c.Relay.DERPPort = "2001:db8::7", 443
	if got, want := PublicURL(c), "https://[2001:db8::7]:443/derpmap.json"; got != want {
		t.Errorf("PublicURL(IPv6): got %q, want %q", got, want)
	}
	for _, tt := range []struct {
		snippet string
		keep    bool
	}{
		{HeadscaleURLs("https://d.example:1/derpmap.json", true), true},
		{HeadscaleURLs("https://d.example:1/derpmap.json", false), false},
		{HeadscalePaths("/etc/headscale/derp.yaml", true), true},
		{HeadscalePaths("/etc/headscale/derp.yaml", false), false},
	} {
		var cfg struct {
			DERP struct {
				URLs  []string `yaml:"urls"`
				Paths []string `yaml:"paths"`
			} `yaml:"derp"`
		}
		if err := yaml.Unmarshal([]byte(tt.snippet), &cfg); err != nil {
			t.Fatalf("snippet is not YAML: %v\n%s", err, tt.snippet)
		}
		hasDefault := false
		for _, u := range cfg.DERP.URLs {
			hasDefault = hasDefault || strings.Contains(u, "controlplane.tailscale.com")
		}
		if hasDefault != tt.keep {
			t.Errorf("snippet keeps Tailscale's map = %v, want %v:\n%s", hasDefault, tt.keep, tt.snippet)
		}
		if len(cfg.DERP.URLs)+len(cfg.DERP.Paths) == 0 {
			t.Errorf("snippet names no map:\n%s", tt.snippet)
		}
	}
}
