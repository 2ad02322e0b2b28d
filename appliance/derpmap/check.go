package derpmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
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
	if m == nil {
		return r
	}
	r.Regions = m.RegionIDs()
	checkMap(m, home, &r)
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

// parseTree parses standard JSON as YAML (JSON is a subset of it) to get
// line numbers and the keys as written. Tabs, which YAML refuses as
// indentation, can only be whitespace in standard JSON.
func parseTree(std []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(bytes.ReplaceAll(std, []byte("\t"), []byte(" ")), &doc); err != nil || len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// memberValue returns the value under key k of mapping n, or nil.
func memberValue(n *yaml.Node, k string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == k {
			return n.Content[i+1]
		}
	}
	return nil
}

func hasAnyKeyFold(m map[string]json.RawMessage, keys ...string) bool {
	for k := range m {
		for _, want := range keys {
			if strings.EqualFold(k, want) {
				return true
			}
		}
	}
	return false
}

// fieldKeys returns the keys a decoder matches for struct type t: the JSON
// names, or (for yaml.v3, which ignores json tags) the lowercased Go field
// names.
func fieldKeys(t reflect.Type, jsonRules bool) map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name := strings.ToLower(f.Name)
		if jsonRules {
			name = f.Name
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == "-" {
				continue
			} else if tag != "" {
				name = tag
			}
		}
		keys[name] = f.Type
	}
	return keys
}

// lintKeys walks a parsed map and reports keys its consumer ignores:
// unknown keys, keys that appear twice, and (under yaml.v3 rules)
// capitalised spellings of real fields. It does not follow YAML aliases,
// which could make a small input expand without bound.
func lintKeys(n *yaml.Node, t reflect.Type, jsonRules bool, r *Report) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for _, c := range n.Content {
			lintKeys(c, t.Elem(), jsonRules, r)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if line, dup := seen[k.Value]; dup && jsonRules {
				r.add(SevError, "Line %d: the key %q appears twice (also on line %d); only the last one counts.", k.Line, k.Value, line)
			}
			seen[k.Value] = k.Line
			if t.Key().Kind() == reflect.Int {
				if _, err := strconv.Atoi(k.Value); err != nil {
					r.add(SevError, "Line %d: %q is not a region ID; region keys are numbers such as 900.", k.Line, k.Value)
				}
			}
			lintKeys(n.Content[i+1], t.Elem(), jsonRules, r)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		known := fieldKeys(t, jsonRules)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := known[k.Value]
			if jsonRules {
				for name, typ := range known {
					if strings.EqualFold(name, k.Value) {
						ft, ok = typ, true
					}
				}
			}
			norm := strings.ToLower(k.Value)
			if line, dup := seen[norm]; dup && ok && jsonRules {
				r.add(SevError, "Line %d: %q is set twice (also on line %d); only the last one counts.", k.Line, k.Value, line)
			}
			seen[norm] = k.Line
			switch {
			case ok:
				lintKeys(n.Content[i+1], ft, jsonRules, r)
			case !jsonRules && known[norm] != nil:
				r.add(SevError, "Line %d: headscale ignores the key %q, because it only reads lowercase keys: write %q.", k.Line, k.Value, norm)
				// Look inside too, so that every key to fix is
				// reported at once, not one level per round.
				lintKeys(n.Content[i+1], known[norm], jsonRules, r)
			default:
				r.add(SevWarning, "Line %d: %q is not a field of a DERP %s, so it is ignored.", k.Line, k.Value, typeWord(t))
			}
		}
	}
}

func typeWord(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[tailcfg.DERPMap]():
		return "map"
	case reflect.TypeFor[tailcfg.DERPRegion]():
		return "region"
	case reflect.TypeFor[tailcfg.DERPNode]():
		return "node"
	}
	return "map section"
}

// capitalisedKeys reports whether any mapping key has an uppercase letter.
func capitalisedKeys(n *yaml.Node) bool {
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			if strings.ToLower(n.Content[i].Value) != n.Content[i].Value {
				return true
			}
		}
	}
	return slices.ContainsFunc(n.Content, capitalisedKeys)
}

// checkMap checks the decoded map's content against the running region.
func checkMap(m *tailcfg.DERPMap, home *tailcfg.DERPRegion, r *Report) {
	if len(m.Regions) == 0 {
		r.add(SevError, "The map has no regions. headscale refuses to start with an empty map, and Tailscale clients would get nothing from it.")
		return
	}
	nodeNames := map[string]int{} // node name → region
	ours := false
	for _, id := range m.RegionIDs() {
		reg := m.Regions[id]
		if reg == nil {
			if id >= 900 {
				r.add(SevWarning, "Region %d is null, which only removes a region; there is nothing to remove at %d.", id, id)
			} else {
				r.add(SevNote, "Region %d is null: this removes Tailscale's region %d for your tailnet.", id, id)
			}
			continue
		}
		switch {
		case reg.RegionID == 0:
			r.add(SevError, "Region %d has no RegionID inside it; set \"RegionID\": %d.", id, id)
		case reg.RegionID != id:
			r.add(SevError, "Region %d says RegionID %d inside; the two must be the same.", id, reg.RegionID)
		}
		if id < 900 || id > 999 {
			r.add(SevWarning, "Region %d is outside 900–999, the IDs Tailscale leaves free for your own regions; it replaces or collides with one of Tailscale's.", id)
		}
		if reg.RegionCode == "" {
			r.add(SevWarning, "Region %d has no RegionCode; clients show it as blank.", id)
		}
		if reg.RegionName == "" {
			r.add(SevWarning, "Region %d has no RegionName; clients show it as blank.", id)
		}
		if len(reg.Nodes) == 0 {
			r.add(SevError, "Region %d has no nodes, so no client can use it.", id)
		}
		regionIsOurs := false
		var others []string
		for i, n := range reg.Nodes {
			if n == nil {
				r.add(SevError, "Region %d, node %d is empty.", id, i+1)
				continue
			}
			label := nodeLabel(n, i)
			if n.Name == "" {
				r.add(SevError, "Region %d, node %d has no Name; every node needs a name unique in the map.", id, i+1)
			} else if other, dup := nodeNames[n.Name]; dup {
				r.add(SevError, "Node name %q is used twice (regions %d and %d); names must be unique across the map.", n.Name, other, id)
			} else {
				nodeNames[n.Name] = id
			}
			switch {
			case n.RegionID == 0:
				r.add(SevError, "%s has no RegionID. Clients silently skip a node without it (tailscale issue 9526); add \"RegionID\": %d.", label, id)
			case n.RegionID != id:
				r.add(SevError, "%s says RegionID %d but sits in region %d; clients skip it.", label, n.RegionID, id)
			}
			if n.HostName == "" {
				r.add(SevError, "%s has no HostName, so clients cannot reach it.", label)
			}
			if home != nil && len(home.Nodes) > 0 && sameHost(n.HostName, home.Nodes[0].HostName) {
				ours, regionIsOurs = true, true
				checkOurNode(n, label, id, home, r)
			} else if n.HostName != "" {
				others = append(others, n.HostName)
			}
		}
		if home != nil && id == home.RegionID && !regionIsOurs && len(reg.Nodes) > 0 {
			r.add(SevError, "Region %d in this map belongs to other servers (%s), and this box's region is %d too. "+
				"Two regions with one ID collide: Tailscale and headscale keep only one of them. Give this box another region ID in setup, or change the other region.",
				id, strings.Join(others, ", "), id)
		}
		if id == 999 {
			r.Findings = append(r.Findings, RegionIDFindings(999)...)
		}
	}
	if home != nil && !ours {
		r.add(SevNote, "This map does not include this box (%s); paste the box's own map from this page into your configuration to use it.", homeHost(home))
	}
	if m.OmitDefaultRegions {
		r.add(SevNote, "OmitDefaultRegions is on: clients use only the regions in this map, none of Tailscale's.")
	}
}

func nodeLabel(n *tailcfg.DERPNode, i int) string {
	if n.Name != "" {
		return fmt.Sprintf("Node %q", n.Name)
	}
	return fmt.Sprintf("Node %d", i+1)
}

func homeHost(home *tailcfg.DERPRegion) string {
	if len(home.Nodes) == 0 {
		return "no hostname yet"
	}
	return home.Nodes[0].HostName
}

func sameHost(a, b string) bool {
	return a != "" && strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// checkOurNode compares a node that names this box with what the relay
// serves, spelling out the defaults a missing field falls back to.
func checkOurNode(n *tailcfg.DERPNode, label string, regionID int, home *tailcfg.DERPRegion, r *Report) {
	want := home.Nodes[0]
	if regionID != home.RegionID {
		r.add(SevWarning, "%s is this box, which serves region %d, but the map puts it in region %d.", label, home.RegionID, regionID)
	}
	if got := effectivePort(n.DERPPort, 443); got != want.DERPPort {
		r.add(SevError, "%s says DERP port %d%s, but this box serves DERP on port %d. Clients would knock on the wrong port.",
			label, got, defaultNote(n.DERPPort), want.DERPPort)
	}
	switch got := effectivePort(n.STUNPort, 3478); {
	case n.STUNPort < 0:
		r.add(SevWarning, "%s turns STUN off (STUNPort -1), but this box answers STUN on udp %d; clients lose the latency measurement that picks their home region.", label, want.STUNPort)
	case got != want.STUNPort:
		r.add(SevError, "%s says STUN port %d%s, but this box answers STUN on udp %d.", label, got, defaultNote(n.STUNPort), want.STUNPort)
	}
	switch {
	case want.CertName != "" && n.CertName == "" && !n.InsecureForTests:
		r.add(SevError, "%s has no CertName, but this box serves a self-signed certificate: clients will refuse it. Add \"CertName\": %q.", label, want.CertName)
	case want.CertName != "" && n.CertName != "" && n.CertName != want.CertName:
		r.add(SevError, "%s pins a different certificate (%s) than the one this box serves (%s); clients will refuse the connection. Copy the map again.", label, n.CertName, want.CertName)
	case want.CertName == "" && strings.HasPrefix(n.CertName, "sha256-raw:"):
		r.add(SevError, "%s pins a self-signed certificate, but this box now serves a trusted one; remove CertName.", label)
	}
	if n.InsecureForTests && !want.InsecureForTests {
		r.add(SevWarning, "%s has InsecureForTests: clients accept any certificate for it. This box's map does not need it.", label)
	}
	for _, ip := range []struct{ field, v string }{{"IPv4", n.IPv4}, {"IPv6", n.IPv6}} {
		if ip.v != "" && ip.v != "none" {
			r.add(SevWarning, "%s has a fixed %s address (%s). This box's address changes; remove the field so clients look up %s instead of trying a stale address.", label, ip.field, ip.v, want.HostName)
		}
	}
	if want.IPv4 == "none" && n.IPv4 != "none" {
		r.add(SevWarning, "%s lacks \"IPv4\": \"none\": this line has no public IPv4, so clients waste time trying it.", label)
	}
}

func effectivePort(p, def int) int {
	if p == 0 {
		return def
	}
	return p
}

func defaultNote(p int) string {
	if p == 0 {
		return " (the default when the field is missing)"
	}
	return ""
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
