package config

import (
	"bytes"
	"errors"
	"net/netip"
	"net/url"
	"strings"

	"github.com/homederp/homederp/internal/usermsg"
	"github.com/homederp/homederp/relay/spec"
)

// FieldError is one problem with one setting. Its message has a stable ID
// and named arguments, which the web UI translates with its catalogues
// (webui/locales), and an English text for everything else (logs, JSON,
// the command line).
type FieldError struct {
	Path string // e.g. "region.id"
	ID   string // e.g. "setting.region_id_range"
	Args Args   // e.g. {"ID": 901}
	Msg  string // e.g. "901 is outside 900–999, the range Tailscale leaves free for custom regions"
}

// Args are a message's named arguments (internal/usermsg).
type Args = map[string]any

func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// Errors is every problem Validate found. The web UI shows each next to
// its field.
type Errors []FieldError

// add records a problem: its English text with its ID and arguments
// (usermsg.Say).
func (es *Errors) add(path, id, text string, args Args) {
	msg, _ := usermsg.Say(id, text, args)
	*es = append(*es, FieldError{Path: path, ID: id, Args: args, Msg: msg})
}

// addErr records a problem another package put in words (relay/spec);
// its ID and arguments come with it.
func (es *Errors) addErr(path string, err error) {
	fe := FieldError{Path: path, Msg: err.Error()}
	if m := new(usermsg.Error); errors.As(err, &m) {
		fe.ID, fe.Args = m.UserMessage()
	}
	*es = append(*es, fe)
}

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
		errs.add("version", "setting.version", "schema version {{.Got}}, want {{.Want}}", Args{"Got": c.Version, "Want": SchemaVersion})
	}
	c.validateHostname(&errs)
	c.Relay.validate(&errs)
	if c.Relay.DERPPort == c.Relay.STUNPort && c.Relay.DERPPort != 0 {
		errs.add("relay.stun_port", "setting.stun_is_derp", "STUN and DERP both use port {{.Port}}; give them different ports so the router's port-forwards stay clear", Args{"Port": c.Relay.STUNPort})
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
		errs.add("hostname", "setting.hostname_missing", "the relay needs a hostname, e.g. derp.example.com", nil)
	case isIP(h):
		if a := netip.MustParseAddr(h); a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			errs.add("hostname", "setting.hostname_bad_ip", "{{printf \"%q\" .Host}} is not an address clients can dial", Args{"Host": h})
		}
	case !spec.IsDNSName(h):
		errs.add("hostname", "setting.hostname_bad", "{{printf \"%q\" .Host}} is not a valid DNS name or IP address (letters, digits and hyphens in dot-separated labels)", Args{"Host": h})
	}
}

func (r Region) validate(errs *Errors) {
	if r.ID < 900 || r.ID > 999 {
		errs.add("region.id", "setting.region_id_range", "{{.ID}} is outside 900–999, the range Tailscale leaves free for custom regions", Args{"ID": r.ID})
	}
	if r.Code == "" {
		errs.add("region.code", "setting.region_code_missing", "the region needs a short code, e.g. home", nil)
	} else if len(r.Code) > 32 || strings.IndexFunc(r.Code, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-')
	}) >= 0 {
		errs.add("region.code", "setting.region_code_bad", "{{printf \"%q\" .Code}} should be up to 32 lowercase letters, digits or hyphens", Args{"Code": r.Code})
	}
	if strings.TrimSpace(r.Name) == "" {
		errs.add("region.name", "setting.region_name_missing", "the region needs a name, e.g. Home", nil)
	} else if len(r.Name) > 64 {
		errs.add("region.name", "setting.region_name_long", "keep the name under 64 characters", nil)
	}
	if r.NodeName == "" {
		errs.add("region.node_name", "setting.node_name_missing", "the node needs a name, e.g. 900a", nil)
	} else if !isDNSLabelish(r.NodeName) {
		errs.add("region.node_name", "setting.node_name_bad", "{{printf \"%q\" .Name}} should be letters, digits or hyphens", Args{"Name": r.NodeName})
	}
}

func (t Tailnet) validate(errs *Errors) {
	if t.ControlURL == "" {
		return
	}
	u, err := url.Parse(t.ControlURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs.add("tailnet.control_url", "setting.control_url_bad", "{{printf \"%q\" .URL}} is not a URL such as https://headscale.example.com (leave it empty for Tailscale)", Args{"URL": t.ControlURL})
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
