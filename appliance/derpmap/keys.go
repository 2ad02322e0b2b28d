package derpmap

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	"tailscale.com/tailcfg"
)

// The key linter: a pasted map is also read as a YAML tree (JSON is a
// subset of YAML), which keeps the keys as written and their line
// numbers, so keys the map's consumer would ignore can be named.

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
