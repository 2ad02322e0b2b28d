package peerrelay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"tailscale.com/tailcfg"
)

// Grant returns the "grants" member to paste into a Tailscale policy
// file (or headscale's policy) so that every node of the tailnet may use
// box as its peer relay, e.g.
//
//	"grants": [
//	  {
//	    "src": ["*"],
//	    "dst": ["tag:homederp"],
//	    "app": {"tailscale.com/cap/relay": []}
//	  }
//	],
//
// box names the box's node as the policy does: a tag ("tag:homederp") or
// its tailnet address ("100.64.0.7"). The grant gives the clients
// tailscale.com/cap/relay on the box; the control server adds the
// companion tailscale.com/cap/relay-target the other way by itself. The
// trailing comma lets it sit among the file's other members.
func Grant(box string) []byte {
	// Laid out by hand: json.MarshalIndent would put every list element
	// on a line of its own. Marshalling a string cannot fail.
	dst, _ := json.Marshal(box)
	var b bytes.Buffer
	fmt.Fprintf(&b, "\"grants\": [\n  {\n    \"src\": [\"*\"],\n    \"dst\": [%s],\n    \"app\": {%q: []}\n  }\n],\n", dst, tailcfg.PeerCapabilityRelay)
	return b.Bytes()
}

// PolicyName is how a policy file names the node with these tags and
// tailnet addresses: its first tag, else its IPv4 address (else IPv6),
// else "" (not logged in yet).
func PolicyName(tags []string, addrs []netip.Addr) string {
	for _, t := range tags {
		if strings.HasPrefix(t, "tag:") {
			return t
		}
	}
	for _, a := range addrs {
		if a.Is4() {
			return a.String()
		}
	}
	if len(addrs) > 0 {
		return addrs[0].String()
	}
	return ""
}
