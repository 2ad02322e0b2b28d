package config

import (
	"bytes"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/homederp/homederp/relay/spec"
)

// FieldError is one problem with one setting.
type FieldError struct {
	Path string // e.g. "region.id"
	Msg  string // a sentence for the user, e.g. "901 is taken"
}

func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// Errors is every problem Validate found. The web UI shows each next to
// its field.
type Errors []FieldError

func (es *Errors) add(path, msg string) { *es = append(*es, FieldError{path, msg}) }

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// For returns the messages about one field path.
func (es Errors) For(path string) []string {
	var msgs []string
	for _, e := range es {
		if e.Path == path {
			msgs = append(msgs, e.Msg)
		}
	}
	return msgs
}

// Validate returns nil or an Errors listing every problem with c.
func (c Config) Validate() error {
	var errs Errors
	if c.Version != SchemaVersion {
		errs.add("version", fmt.Sprintf("schema version %d, want %d", c.Version, SchemaVersion))
	}
	c.validateHostname(&errs)
	c.Relay.validate(&errs)
	if c.Relay.DERPPort == c.Relay.STUNPort && c.Relay.DERPPort != 0 {
		errs.add("relay.stun_port", fmt.Sprintf("STUN and DERP both use port %d; give them different ports so the router's port-forwards stay clear", c.Relay.STUNPort))
	}
	c.Region.validate(&errs)
	c.validateCert(&errs)
	c.validateDDNS(&errs)
	c.Tailnet.validate(&errs)
	c.validatePeerRelay(&errs)
	c.ReverseProxy.validate(&errs)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func (c Config) validateHostname(errs *Errors) {
	h := c.Hostname
	switch {
	case h == "":
		errs.add("hostname", "the relay needs a hostname, e.g. derp.example.com")
	case isIP(h):
		if a := netip.MustParseAddr(h); a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			errs.add("hostname", fmt.Sprintf("%q is not an address clients can dial", h))
		}
	case !spec.IsDNSName(h):
		errs.add("hostname", fmt.Sprintf("%q is not a valid DNS name or IP address (letters, digits and hyphens in dot-separated labels)", h))
	}
}

func (r Region) validate(errs *Errors) {
	if r.ID < 900 || r.ID > 999 {
		errs.add("region.id", fmt.Sprintf("%d is outside 900–999, the range Tailscale leaves free for custom regions", r.ID))
	}
	if r.Code == "" {
		errs.add("region.code", "the region needs a short code, e.g. home")
	} else if len(r.Code) > 32 || strings.IndexFunc(r.Code, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-')
	}) >= 0 {
		errs.add("region.code", fmt.Sprintf("%q should be up to 32 lowercase letters, digits or hyphens", r.Code))
	}
	if strings.TrimSpace(r.Name) == "" {
		errs.add("region.name", "the region needs a name, e.g. Home")
	} else if len(r.Name) > 64 {
		errs.add("region.name", "keep the name under 64 characters")
	}
	if r.NodeName == "" {
		errs.add("region.node_name", "the node needs a name, e.g. 900a")
	} else if !isDNSLabelish(r.NodeName) {
		errs.add("region.node_name", fmt.Sprintf("%q should be letters, digits or hyphens", r.NodeName))
	}
}

func (t Tailnet) validate(errs *Errors) {
	if t.ControlURL == "" {
		return
	}
	u, err := url.Parse(t.ControlURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs.add("tailnet.control_url", fmt.Sprintf("%q is not a URL such as https://headscale.example.com (leave it empty for Tailscale)", t.ControlURL))
	}
}

// NormalizeHostname returns h the way the relay stores and serves it:
// trimmed, lowercase and without a trailing dot, or an IP literal in its
// canonical form. DNS names are case-insensitive, but certificate file
// names, the map and clients' TLS server names compare them as text, so
// "Derp.Example.com." and "derp.example.com" must be one name. Anything
// else about h is left for Validate to explain.
func NormalizeHostname(h string) string {
	h = strings.TrimSpace(h)
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return a.String()
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func isDNSLabelish(l string) bool {
	if l == "" || len(l) > 63 {
		return false
	}
	for _, c := range []byte(l) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
