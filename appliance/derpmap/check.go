package derpmap

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"

	"github.com/homederp/homederp/internal/usermsg"
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

// Finding is one thing Check has to say, in plain words. Its message has
// a stable ID and named arguments, which the web UI translates with its
// catalogues (webui/locales), and its English text.
type Finding struct {
	Severity Severity `json:"severity"`
	ID       string   `json:"id"`  // e.g. "check.node_no_region"
	Args     Args     `json:"-"`   // e.g. {"Node": …, "ID": 900}
	Msg      string   `json:"msg"` // e.g. "Node \"900a\" has no RegionID: ..."
}

// Args are a message's named arguments (internal/usermsg): a node's
// name and a spec error are sentences of their own.
type Args = map[string]any

// newFinding makes a finding: its English text with its ID and arguments
// (usermsg.Say).
func newFinding(s Severity, id, text string, args Args) Finding {
	msg, _ := usermsg.Say(id, text, args)
	return Finding{Severity: s, ID: id, Args: args, Msg: msg}
}

// The ways Check reads a map (Report.Format).
const (
	FormatJSON   = "JSON (Tailscale policy file, or headscale derp.urls)"
	FormatPolicy = "Tailscale policy file \"derpMap\""
	FormatYAML   = "YAML (headscale derp.paths)"
)

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

func (r *Report) add(s Severity, id, text string, args Args) {
	r.Findings = append(r.Findings, newFinding(s, id, text, args))
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
		r.add(SevError, "check.empty", "There is nothing to check: paste a DERP map (JSON, a policy file's \"derpMap\" block, or headscale YAML).", nil)
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
	r.Format = FormatJSON
	if in[0] == '"' {
		// A policy-file member: "derpMap": { ... },
		in = append(append([]byte("{"), bytes.TrimSuffix(in, []byte(","))...), '}')
	}
	std, err := hujson.Standardize(in)
	if err != nil {
		r.add(SevError, "check.json_invalid", "This is not valid JSON: {{.Err}}.", Args{"Err": trimErr(err)})
		return nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(std, &top); err != nil {
		r.add(SevError, "check.json_not_object", "This is not a JSON object: {{.Err}}.", Args{"Err": err.Error()})
		return nil
	}
	raw := json.RawMessage(std)
	tree := parseTree(std)
	found := false
	for k, v := range top {
		if strings.EqualFold(k, "derpMap") {
			r.Format = FormatPolicy
			raw, tree, found = v, memberValue(tree, k), true
			break
		}
	}
	if !found && hasAnyKeyFold(top, "acls", "grants", "tagOwners", "groups", "hosts", "ssh") {
		r.add(SevError, "check.no_derpmap", "This policy file has no \"derpMap\" section.", nil)
		return nil
	}
	if tree != nil {
		lintKeys(tree, reflect.TypeFor[tailcfg.DERPMap](), true, r)
	}
	var m tailcfg.DERPMap
	if err := json.Unmarshal(raw, &m); err != nil {
		r.add(SevError, "check.json_shape", "The map does not fit Tailscale's DERP map format: {{.Err}}.", Args{"Err": strings.TrimPrefix(err.Error(), "json: ")})
		return nil
	}
	if tree != nil {
		if capitalisedKeys(tree) {
			r.add(SevNote, "check.json_not_for_paths", "This JSON is right for a Tailscale policy file and for headscale's derp.urls. "+
				"Do not use it as a headscale derp.paths file: headscale reads that with a YAML decoder that ignores capitalised keys, and would load no regions from it.", nil)
		}
	}
	return &m
}

// checkYAML reads a headscale derp.paths file exactly as headscale does.
func checkYAML(in []byte, r *Report) *tailcfg.DERPMap {
	r.Format = FormatYAML
	var doc yaml.Node
	if err := yaml.Unmarshal(in, &doc); err != nil {
		r.add(SevError, "check.yaml_invalid", "This is neither JSON nor valid YAML: {{.Err}}.", Args{"Err": trimErr(err)})
		return nil
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		r.add(SevError, "check.yaml_not_map", "This YAML is not a map of keys; a derp.paths file starts with \"regions:\".", nil)
		return nil
	}
	tree := doc.Content[0]
	if memberValue(tree, "derp") != nil && memberValue(tree, "regions") == nil {
		r.add(SevError, "check.headscale_config", "This looks like headscale's config.yaml. Paste the DERP map itself: the file its derp.paths lists, or what its derp.urls serve.", nil)
		return nil
	}
	lintKeys(tree, reflect.TypeFor[tailcfg.DERPMap](), false, r)
	m, err := ParseYAML(bytes.NewReader(in))
	if err != nil {
		r.add(SevError, "check.yaml_unreadable", "headscale could not read this file: {{.Err}}.", Args{"Err": trimErr(err)})
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
