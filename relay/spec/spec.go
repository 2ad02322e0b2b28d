// Package spec is the one home of the relay's settings that other parts
// write down or read back: the certificate pin of a DERP map
// ("sha256-raw:<hex>"), derper's --mesh-with peer syntax and the
// verify-client URL, and the host names they contain. The relay, the
// configuration's validation and the DERP map (rendering and checking) all
// call it, so a setting one of them accepts is what the others accept too.
//
// It imports only the standard library (and internal/usermsg, which does
// too), so appliance/config and appliance/derpmap stay leaf packages that
// import no service. Its errors are sentences of usermsg, which the web
// UI translates.
package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/homederp/homederp/internal/usermsg"
)

// pinPrefix starts a DERPNode.CertName that pins a certificate by hash
// instead of naming it.
const pinPrefix = "sha256-raw:"

// Pin returns the DERPNode.CertName that pins the certificate der, e.g.
// "sha256-raw:3f5c…" (64 lowercase hex digits of SHA-256 over the DER).
func Pin(der []byte) string {
	sum := sha256.Sum256(der)
	return pinPrefix + hex.EncodeToString(sum[:])
}

// IsPin reports whether certName is meant as a pin (it has the prefix),
// well-formed or not.
func IsPin(certName string) bool { return strings.HasPrefix(certName, pinPrefix) }

// CheckPin says what is wrong with a pin, or returns nil. Tailscale's
// clients compare the lowercase hex exactly (tlsdial), so uppercase hex
// is an error, not a spelling: such a pin would never match.
func CheckPin(s string) error {
	h, ok := strings.CutPrefix(s, pinPrefix)
	switch {
	case !ok:
		return usermsg.Errorf("spec.pin_prefix", "{{printf \"%q\" .Pin}} is not a certificate pin: want sha256-raw:<64 hex digits> (copy CertName from the box's DERP map)", map[string]any{"Pin": s})
	case len(h) != 64 || strings.Trim(h, "0123456789abcdefABCDEF") != "":
		return usermsg.Errorf("spec.pin_hex", "{{printf \"%q\" .Pin}} is not sha256-raw: followed by 64 hex digits (copy CertName from the box's DERP map)", map[string]any{"Pin": s})
	case strings.ToLower(h) != h:
		return usermsg.Errorf("spec.pin_upper", "{{printf \"%q\" .Pin}} has uppercase hex digits; clients compare lowercase exactly, so write {{.Lower}}", map[string]any{"Pin": s, "Lower": pinPrefix + strings.ToLower(h)})
	}
	return nil
}

// MeshWith is one element of derper's --mesh-with list,
// "host[:port][/dialhost]".
type MeshWith struct {
	Host     string // as written, e.g. "derp2.example.com:12345" or "[2001:db8::2]"
	Name     string // Host's name or address without brackets, e.g. "derp2.example.com"
	Port     int    // from Host, 443 if it has none
	DialHost string // e.g. "192.168.1.20"; "" dials Host
}

// ParseMeshWith parses one --mesh-with element and says in plain words
// what is wrong with it.
func ParseMeshWith(s string) (MeshWith, error) {
	bad := usermsg.Errorf("spec.mesh_bad", "{{printf \"%q\" .Mesh}} is not of the form host[:port] or host[:port]/dialhost", map[string]any{"Mesh": s})
	if strings.TrimSpace(s) != s || s == "" || strings.Count(s, "/") > 1 || strings.ContainsAny(s, " \t,") {
		return MeshWith{}, bad
	}
	host, dial, hasDial := strings.Cut(s, "/")
	if hasDial && (dial == "" || strings.Contains(strings.Trim(dial, "[]"), "]")) {
		return MeshWith{}, bad
	}
	if hasDial && strings.Contains(dial, ":") && !isIP(strings.Trim(dial, "[]")) {
		return MeshWith{}, usermsg.Errorf("spec.mesh_dial_port", "{{printf \"%q\" .Mesh}}: the dial host takes no port (the port comes from the host part)", map[string]any{"Mesh": s})
	}
	name, port, err := SplitMeshHost(host)
	if err != nil {
		return MeshWith{}, usermsg.Errorf("spec.mesh_host", "{{printf \"%q\" .Mesh}}: {{.Err}}", map[string]any{"Mesh": s, "Err": err})
	}
	if !isIP(name) && !IsDNSName(name) {
		return MeshWith{}, bad
	}
	return MeshWith{Host: host, Name: name, Port: port, DialHost: dial}, nil
}

// SplitMeshHost splits the host part of a --mesh-with element into a
// name (brackets removed) and a port, 443 when it has none.
func SplitMeshHost(host string) (name string, port int, err error) {
	if host == "" {
		return "", 0, usermsg.Errorf("spec.no_host", "no host name", nil)
	}
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		// No port. A bare IPv6 literal is allowed in brackets only.
		if strings.Contains(host, ":") && !(strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")) {
			return "", 0, usermsg.Errorf("spec.ipv6_brackets", "write an IPv6 address in brackets, e.g. [2001:db8::1]:12345", nil)
		}
		return strings.Trim(host, "[]"), 443, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, usermsg.Errorf("spec.port", "{{printf \"%q\" .Port}} is not a port number (1–65535)", map[string]any{"Port": p})
	}
	if h == "" {
		return "", 0, usermsg.Errorf("spec.no_host", "no host name", nil)
	}
	return h, n, nil
}

// CheckVerifyURL says what is wrong with an admission URL such as
// headscale's "https://headscale.example.com/verify", or returns nil.
func CheckVerifyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usermsg.Errorf("spec.verify_url", "{{printf \"%q\" .URL}} is not an http:// or https:// URL with a host, e.g. https://headscale.example.com/verify", map[string]any{"URL": s})
	}
	return nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// IsDNSName reports whether s is a host name of letter-digit-hyphen
// labels (none starting or ending with a hyphen), with an optional
// trailing dot, e.g. "derp.example.com".
func IsDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
