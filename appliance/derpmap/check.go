package derpmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/tailscale/hujson"
	"gopkg.in/yaml.v3"
	"tailscale.com/tailcfg"
)

// Severity says how bad a Finding is.
type Severity string

const (
	// SevError: clients will not use the map (or this box) as intended.
	SevError Severity = "error"
	// SevWarning: it works, but probably not as the user thinks.
	SevWarning Severity = "warning"
	// SevNote: worth knowing; nothing is wrong.
	SevNote Severity = "note"
)

// Finding is one thing Check has to say, in plain words.
type Finding struct {
	Severity Severity `json:"severity"`
	Msg      string   `json:"msg"` // e.g. "Node \"900a\" has no RegionID: ..."
}

// Report is the result of checking a pasted map.
type Report struct {
	// Format says how the input was read, e.g. "YAML (headscale derp.paths)".
	Format   string    `json:"format"`
	Regions  []int     `json:"regions"` // region IDs found, sorted
	Findings []Finding `json:"findings"`
}

// OK reports whether the map has no errors.
func (r Report) OK() bool {
	for _, f := range r.Findings {
		if f.Severity == SevError {
			return false
		}
	}
	return true
}

func (r *Report) add(s Severity, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{s, fmt.Sprintf(format, args...)})
}

// Check validates a DERP map the user pasted: a Tailscale policy file (or
// just its "derpMap" block), a JSON map as headscale's derp.urls serves
// it, or a headscale derp.paths YAML file. It reads the map the way its
// consumer would (case-insensitive JSON for Tailscale; yaml.v3 for
// headscale, which drops capitalised keys) and compares it with home, this
// box's region as it is served now: a missing RegionID on a node, ports or
// certificate pin that drifted from the running relay, region-ID
// collisions, and keys that would be ignored.
func Check(input []byte, home *tailcfg.DERPRegion) Report {
	var r Report
	in := bytes.TrimSpace(bytes.TrimPrefix(input, []byte("\xef\xbb\xbf")))
	if len(in) == 0 {
		r.add(SevError, "There is nothing to check: paste a DERP map (JSON, a policy file's \"derpMap\" block, or headscale YAML).")
		return r
	}
	var m *tailcfg.DERPMap
	switch in[0] {
	case '{', '"':
		m = checkJSON(in, &r)
	default:
		m = checkYAML(in, &r)
	}
	if m != nil {
		r.Regions = m.RegionIDs()
		checkMap(m, home, &r)
	}
	// Also when the map could not be read: the warnings about its keys
	// come before that, but the error is what the user must see first.
	sortFindings(r.Findings)
	return r
}

// checkJSON reads a JSON or HuJSON map, a whole policy file, or a pasted
// "derpMap": {...} member.
func checkJSON(in []byte, r *Report) *tailcfg.DERPMap {
	r.Format = "JSON (Tailscale policy file, or headscale derp.urls)"
	if in[0] == '"' {
		// A policy-file member: "derpMap": { ... },
		in = append(append([]byte("{"), bytes.TrimSuffix(in, []byte(","))...), '}')
	}
	std, err := hujson.Standardize(in)
	if err != nil {
		r.add(SevError, "This is not valid JSON: %v.", trimErr(err))
		return nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(std, &top); err != nil {
		r.add(SevError, "This is not a JSON object: %v.", err)
		return nil
	}
	raw := json.RawMessage(std)
	tree := parseTree(std)
	found := false
	for k, v := range top {
		if strings.EqualFold(k, "derpMap") {
			r.Format = "Tailscale policy file \"derpMap\""
			raw, tree, found = v, memberValue(tree, k), true
			break
		}
	}
	if !found && hasAnyKeyFold(top, "acls", "grants", "tagOwners", "groups", "hosts", "ssh") {
		r.add(SevError, "This policy file has no \"derpMap\" section.")
		return nil
	}
	if tree != nil {
		lintKeys(tree, reflect.TypeFor[tailcfg.DERPMap](), true, r)
	}
	var m tailcfg.DERPMap
	if err := json.Unmarshal(raw, &m); err != nil {
		r.add(SevError, "The map does not fit Tailscale's DERP map format: %v.", strings.TrimPrefix(err.Error(), "json: "))
		return nil
	}
	if tree != nil {
		if capitalisedKeys(tree) {
			r.add(SevNote, "This JSON is right for a Tailscale policy file and for headscale's derp.urls. "+
				"Do not use it as a headscale derp.paths file: headscale reads that with a YAML decoder that ignores capitalised keys, and would load no regions from it.")
		}
	}
	return &m
}

// checkYAML reads a headscale derp.paths file exactly as headscale does.
func checkYAML(in []byte, r *Report) *tailcfg.DERPMap {
	r.Format = "YAML (headscale derp.paths)"
	var doc yaml.Node
	if err := yaml.Unmarshal(in, &doc); err != nil {
		r.add(SevError, "This is neither JSON nor valid YAML: %v.", trimErr(err))
		return nil
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		r.add(SevError, "This YAML is not a map of keys; a derp.paths file starts with \"regions:\".")
		return nil
	}
	tree := doc.Content[0]
	if memberValue(tree, "derp") != nil && memberValue(tree, "regions") == nil {
		r.add(SevError, "This looks like headscale's config.yaml. Paste the DERP map itself: the file its derp.paths lists, or what its derp.urls serve.")
		return nil
	}
	lintKeys(tree, reflect.TypeFor[tailcfg.DERPMap](), false, r)
	m, err := ParseYAML(bytes.NewReader(in))
	if err != nil {
		r.add(SevError, "headscale could not read this file: %v.", trimErr(err))
		return nil
	}
	return m
}

// trimErr shortens decoder errors to their message.
func trimErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: ")
	s = strings.TrimPrefix(s, "hujson: ")
	return strings.TrimSuffix(s, ".")
}

// sortFindings puts errors first, keeping the order within a severity.
func sortFindings(fs []Finding) {
	rank := map[Severity]int{SevError: 0, SevWarning: 1, SevNote: 2}
	sort.SliceStable(fs, func(i, j int) bool { return rank[fs[i].Severity] < rank[fs[j].Severity] })
}
