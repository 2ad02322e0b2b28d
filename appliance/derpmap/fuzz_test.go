package derpmap

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"tailscale.com/tailcfg"
)

// FuzzYAMLRoundTrip: any map headscale can read from a derp.paths file
// (ParseYAML decodes as headscale does), rendered by YAML for derp.paths
// and by JSON for derp.urls, reads back as the same map. The box renders
// its own map this way, so what headscale loads never differs from what
// the web UI shows.
func FuzzYAMLRoundTrip(f *testing.F) {
	y, err := YAML(Map(testConfig(), Options{PinnedCert: []byte("cert")}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(y)
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseYAML(bytes.NewReader(in))
		if err != nil {
			return
		}
		// A zero map and an empty one are the same to every consumer.
		opts := cmp.Options{cmpopts.EquateEmpty()}
		out, err := YAML(m)
		if err != nil {
			t.Fatalf("YAML of a map ParseYAML accepted: %v", err)
		}
		back, err := ParseYAML(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("ParseYAML(YAML(m)): %v\n%s", err, out)
		}
		if diff := cmp.Diff(m, back, opts); diff != "" {
			t.Fatalf("YAML round trip differs (-parsed +round trip):\n%s\n%s", diff, out)
		}
		j, err := JSON(m)
		if err != nil {
			t.Fatalf("JSON of a map ParseYAML accepted: %v", err)
		}
		var fromJSON tailcfg.DERPMap
		if err := json.Unmarshal(j, &fromJSON); err != nil {
			t.Fatalf("JSON(m) does not parse: %v\n%s", err, j)
		}
		if diff := cmp.Diff(m, &fromJSON, opts); diff != "" {
			t.Fatalf("JSON round trip differs (-parsed +round trip):\n%s\n%s", diff, j)
		}
	})
}
