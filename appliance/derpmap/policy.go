package derpmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/homederp/homederp/appliance/config"
	"tailscale.com/tailcfg"
)

// policyMap is tailcfg.DERPMap as Tailscale's documentation spells it in
// a policy file ("OmitDefaultRegions", not the wire's "omitDefaultRegions";
// the control server reads either).
type policyMap struct {
	OmitDefaultRegions bool                        `json:",omitempty"`
	Regions            map[int]*tailcfg.DERPRegion `json:",omitempty"`
}

// PolicyBlock returns the "derpMap" member to paste into a Tailscale
// policy file (tailnet policy / ACLs), e.g.
//
//	"derpMap": {
//	  "OmitDefaultRegions": true,
//	  "Regions": {"900": {...}}
//	},
//
// The trailing comma lets it sit among the file's other members.
func PolicyBlock(m *tailcfg.DERPMap) ([]byte, error) {
	b, err := json.MarshalIndent(policyMap{m.OmitDefaultRegions, m.Regions}, "", "  ")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(`"derpMap": `)
	buf.Write(b)
	buf.WriteString(",\n")
	return buf.Bytes(), nil
}

// PublicURL returns where the relay serves the map to the Internet, the
// URL for headscale's derp.urls: https://<hostname>:<DERP port>/derpmap.json,
// or the reverse proxy's host and port when there is one.
func PublicURL(c config.Config) string {
	return "https://" + net.JoinHostPort(strings.TrimSuffix(c.DialHost(), "."), strconv.Itoa(c.DialPort())) + "/derpmap.json"
}

// HeadscaleURLs returns the derp section of headscale's config.yaml that
// fetches the box's map from url. Keeping Tailscale's default map in the
// list keeps Tailscale's regions too; removing it is headscale's way to
// omit them (headscale drops OmitDefaultRegions when it merges maps).
func HeadscaleURLs(url string, keepTailscaleRegions bool) string {
	var b strings.Builder
	b.WriteString("derp:\n  urls:\n")
	if keepTailscaleRegions {
		b.WriteString("    - https://controlplane.tailscale.com/derpmap/default\n")
	}
	fmt.Fprintf(&b, "    - %s\n", url)
	return b.String()
}

// HeadscalePaths returns the derp section of headscale's config.yaml that
// reads the YAML map from path on the headscale machine.
func HeadscalePaths(path string, keepTailscaleRegions bool) string {
	var b strings.Builder
	b.WriteString("derp:\n")
	if keepTailscaleRegions {
		b.WriteString("  urls:\n    - https://controlplane.tailscale.com/derpmap/default\n")
	} else {
		b.WriteString("  urls: []\n")
	}
	fmt.Fprintf(&b, "  paths:\n    - %s\n", path)
	return b.String()
}

// RegionIDFindings explains known collisions of a custom region ID, in
// plain words; nil when the ID is unremarkable.
func RegionIDFindings(id int) []Finding {
	switch id {
	case 999:
		return []Finding{newFinding(SevWarning, "check.region_999", "Region 999 is the default ID of headscale's embedded DERP server (derp.server.region_id). "+
			"If your headscale runs it, the two regions collide and headscale's own wins silently. Choose another ID between 900 and 998.", nil)}
	case 900:
		return []Finding{newFinding(SevNote, "check.region_900", "Region 900 is the ID nearly every guide uses. If your tailnet already has a custom region 900 "+
			"(another relay, or a map copied from a guide), the two collide and only one survives; then give this box its own ID.", nil)}
	}
	return nil
}
