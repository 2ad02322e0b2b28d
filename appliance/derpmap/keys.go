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
				r.add(SevError, "check.key_twice", "Line {{.Line}}: the key {{printf \"%q\" .Key}} appears twice (also on line {{.Other}}); only the last one counts.", Args{"Line": k.Line, "Key": k.Value, "Other": line})
			}
			seen[k.Value] = k.Line
			if t.Key().Kind() == reflect.Int {
				if _, err := strconv.Atoi(k.Value); err != nil {
					r.add(SevError, "check.key_not_region", "Line {{.Line}}: {{printf \"%q\" .Key}} is not a region ID; region keys are numbers such as 900.", Args{"Line": k.Line, "Key": k.Value})
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
				r.add(SevError, "check.field_twice", "Line {{.Line}}: {{printf \"%q\" .Key}} is set twice (also on line {{.Other}}); only the last one counts.", Args{"Line": k.Line, "Key": k.Value, "Other": line})
			}
			seen[norm] = k.Line
			switch {
			case ok:
				lintKeys(n.Content[i+1], ft, jsonRules, r)
			case !jsonRules && known[norm] != nil:
				r.add(SevError, "check.capitalised", "Line {{.Line}}: headscale ignores the key {{printf \"%q\" .Key}}, because it only reads lowercase keys: write {{printf \"%q\" .Lower}}.", Args{"Line": k.Line, "Key": k.Value, "Lower": norm})
				// Look inside too, so that every key to fix is
				// reported at once, not one level per round.
				lintKeys(n.Content[i+1], known[norm], jsonRules, r)
			default:
				unknownKey(r, k, t)
			}
		}
	}
}

// unknownKey reports key k, which is no field of struct type t.
func unknownKey(r *Report, k *yaml.Node, t reflect.Type) {
	a := Args{"Line": k.Line, "Key": k.Value}
	switch t {
	case reflect.TypeFor[tailcfg.DERPMap]():
		r.add(SevWarning, "check.unknown_map", "Line {{.Line}}: {{printf \"%q\" .Key}} is not a field of a DERP map, so it is ignored.", a)
	case reflect.TypeFor[tailcfg.DERPRegion]():
		r.add(SevWarning, "check.unknown_region", "Line {{.Line}}: {{printf \"%q\" .Key}} is not a field of a DERP region, so it is ignored.", a)
	case reflect.TypeFor[tailcfg.DERPNode]():
		r.add(SevWarning, "check.unknown_node", "Line {{.Line}}: {{printf \"%q\" .Key}} is not a field of a DERP node, so it is ignored.", a)
	default:
		r.add(SevWarning, "check.unknown_section", "Line {{.Line}}: {{printf \"%q\" .Key}} is not a field of a DERP map section, so it is ignored.", a)
	}
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
