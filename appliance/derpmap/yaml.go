package derpmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
	"tailscale.com/tailcfg"
)

// YAML returns m as a file for headscale's derp.paths.
//
// headscale decodes that file with gopkg.in/yaml.v3 straight into
// tailcfg.DERPMap, which has no yaml tags, so yaml.v3 matches only the
// lowercased Go field names: "regionid", "derpport", "insecurefortests".
// A capitalised key ("RegionID") is dropped without an error, and a JSON
// file in Tailscale's spelling loads as zero regions. So every key here is
// lowercase, and fields Tailscale would omit from JSON (zero values, such
// as an empty IPv4 for a dynamic address) are omitted too.
func YAML(m *tailcfg.DERPMap) ([]byte, error) {
	// Going through JSON reuses tailcfg's own omitempty rules and field
	// order, so the YAML carries exactly what the JSON form carries.
	j, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	root, err := jsonToYAML(dec, "")
	if err != nil {
		return nil, fmt.Errorf("converting the DERP map to YAML: %w", err)
	}
	root.HeadComment = "DERP map for headscale's derp.paths, rendered by homederp from its running\n" +
		"configuration. Keys must stay lowercase: headscale ignores capitalised ones."
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// jsonToYAML reads one JSON value from dec and returns it as a YAML node
// with lowercase keys, keeping the key order. parentKey is the lowercased
// key the value sits under; the members of "regions" (and of a region
// score map) are region IDs and become integer keys, because yaml.v3 must
// decode them into a map[int].
func jsonToYAML(dec *json.Decoder, parentKey string) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			intKeys := parentKey == "regions" || parentKey == "regionscore"
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ToLower(k)}
				if intKeys {
					key = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: k}
				}
				val, err := jsonToYAML(dec, key.Value)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, key, val)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return n, nil
		case '[':
			n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			for dec.More() {
				val, err := jsonToYAML(dec, "")
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, val)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return n, nil
		}
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(string(v), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(v)}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(v)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// ParseYAML decodes a derp.paths file exactly as headscale does (yaml.v3
// into tailcfg.DERPMap), so a test or the map checker sees what headscale
// would see, dropped keys included.
func ParseYAML(r io.Reader) (*tailcfg.DERPMap, error) {
	var m tailcfg.DERPMap
	if err := yaml.NewDecoder(r).Decode(&m); err != nil {
		return nil, err
	}
	return &m, nil
}
