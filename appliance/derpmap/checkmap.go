package derpmap

import (
	"fmt"
	"strings"

	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/tailcfg"
)

// checkMap checks the decoded map's content against the running region.
func checkMap(m *tailcfg.DERPMap, home *tailcfg.DERPRegion, r *Report) {
	if len(m.Regions) == 0 {
		r.add(SevError, "check.no_regions", "The map has no regions. headscale refuses to start with an empty map, and Tailscale clients would get nothing from it.", nil)
		return
	}
	nodeNames := map[string]int{} // node name → region
	ours := false
	for _, id := range m.RegionIDs() {
		reg := m.Regions[id]
		if reg == nil {
			if id >= 900 {
				r.add(SevWarning, "check.null_custom", "Region {{.ID}} is null, which only removes a region; there is nothing to remove at {{.ID}}.", Args{"ID": id})
			} else {
				r.add(SevNote, "check.null_removes", "Region {{.ID}} is null: this removes Tailscale's region {{.ID}} for your tailnet.", Args{"ID": id})
			}
			continue
		}
		switch {
		case reg.RegionID == 0:
			r.add(SevError, "check.region_no_id", "Region {{.ID}} has no RegionID inside it; set \"RegionID\": {{.ID}}.", Args{"ID": id})
		case reg.RegionID != id:
			r.add(SevError, "check.region_id_differs", "Region {{.ID}} says RegionID {{.Inside}} inside; the two must be the same.", Args{"ID": id, "Inside": reg.RegionID})
		}
		if id < 900 || id > 999 {
			r.add(SevWarning, "check.region_range", "Region {{.ID}} is outside 900–999, the IDs Tailscale leaves free for your own regions; it replaces or collides with one of Tailscale's.", Args{"ID": id})
		}
		if reg.RegionCode == "" {
			r.add(SevWarning, "check.no_code", "Region {{.ID}} has no RegionCode; clients show it as blank.", Args{"ID": id})
		}
		if reg.RegionName == "" {
			r.add(SevWarning, "check.no_name", "Region {{.ID}} has no RegionName; clients show it as blank.", Args{"ID": id})
		}
		if len(reg.Nodes) == 0 {
			r.add(SevError, "check.no_nodes", "Region {{.ID}} has no nodes, so no client can use it.", Args{"ID": id})
		}
		regionIsOurs := false
		var others []string
		for i, n := range reg.Nodes {
			if n == nil {
				r.add(SevError, "check.node_empty", "Region {{.ID}}, node {{.N}} is empty.", Args{"ID": id, "N": i + 1})
				continue
			}
			label := nodeLabel(n, i)
			if n.Name == "" {
				r.add(SevError, "check.node_no_name", "Region {{.ID}}, node {{.N}} has no Name; every node needs a name unique in the map.", Args{"ID": id, "N": i + 1})
			} else if other, dup := nodeNames[n.Name]; dup {
				r.add(SevError, "check.node_name_twice", "Node name {{printf \"%q\" .Name}} is used twice (regions {{.First}} and {{.ID}}); names must be unique across the map.", Args{"Name": n.Name, "First": other, "ID": id})
			} else {
				nodeNames[n.Name] = id
			}
			switch {
			case n.RegionID == 0:
				r.add(SevError, "check.node_no_region", "{{.Node}} has no RegionID. Clients silently skip a node without it (tailscale issue 9526); add \"RegionID\": {{.ID}}.", Args{"Node": label, "ID": id})
			case n.RegionID != id:
				r.add(SevError, "check.node_region_differs", "{{.Node}} says RegionID {{.Says}} but sits in region {{.ID}}; clients skip it.", Args{"Node": label, "Says": n.RegionID, "ID": id})
			}
			if n.HostName == "" {
				r.add(SevError, "check.node_no_host", "{{.Node}} has no HostName, so clients cannot reach it.", Args{"Node": label})
			}
			if spec.IsPin(n.CertName) {
				if err := spec.CheckPin(n.CertName); err != nil {
					r.add(SevError, "check.bad_pin", "{{.Node}}: CertName {{.Err}}; clients will refuse the connection.", Args{"Node": label, "Err": err})
				}
			}
			if home != nil && len(home.Nodes) > 0 && sameHost(n.HostName, home.Nodes[0].HostName) {
				ours, regionIsOurs = true, true
				checkOurNode(n, label, id, home, r)
			} else if n.HostName != "" {
				others = append(others, n.HostName)
			}
		}
		if home != nil && id == home.RegionID && !regionIsOurs && len(reg.Nodes) > 0 {
			r.add(SevError, "check.collision", "Region {{.ID}} in this map belongs to other servers ({{.Others}}), and this box's region is {{.ID}} too. "+
				"Two regions with one ID collide: Tailscale and headscale keep only one of them. Give this box another region ID in setup, or change the other region.",
				Args{"ID": id, "Others": strings.Join(others, ", ")})
		}
		if id == 999 {
			r.Findings = append(r.Findings, RegionIDFindings(999)...)
		}
	}
	if home != nil && !ours {
		r.add(SevNote, "check.box_missing", "This map does not include this box ({{.Host}}); paste the box's own map from this page into your configuration to use it.", Args{"Host": homeHost(home)})
	}
	if m.OmitDefaultRegions {
		r.add(SevNote, "check.omit", "OmitDefaultRegions is on: clients use only the regions in this map, none of Tailscale's.", nil)
	}
}

// nodeRef names a node in a finding: by its Name, else by its place in
// the region.
type nodeRef struct {
	Name string
	N    int // from 1
}

func nodeLabel(n *tailcfg.DERPNode, i int) nodeRef { return nodeRef{n.Name, i + 1} }

func (n nodeRef) String() string {
	if n.Name != "" {
		return fmt.Sprintf("Node %q", n.Name)
	}
	return fmt.Sprintf("Node %d", n.N)
}

// UserMessage is the node's name as a message of the catalogues.
func (n nodeRef) UserMessage() (id string, args map[string]any) {
	if n.Name != "" {
		return "check.node_named", Args{"Name": n.Name}
	}
	return "check.node_n", Args{"N": n.N}
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
func checkOurNode(n *tailcfg.DERPNode, label nodeRef, regionID int, home *tailcfg.DERPRegion, r *Report) {
	want := home.Nodes[0]
	if regionID != home.RegionID {
		r.add(SevWarning, "check.box_region", "{{.Node}} is this box, which serves region {{.Home}}, but the map puts it in region {{.ID}}.", Args{"Node": label, "Home": home.RegionID, "ID": regionID})
	}
	if got := effectivePort(n.DERPPort, 443); got != want.DERPPort {
		r.add(SevError, "check.derp_port", "{{.Node}} says DERP port {{.Got}}{{if .Default}} (the default when the field is missing){{end}}, but this box serves DERP on port {{.Want}}. Clients would knock on the wrong port.",
			Args{"Node": label, "Got": got, "Default": n.DERPPort == 0, "Want": want.DERPPort})
	}
	switch got := effectivePort(n.STUNPort, 3478); {
	case n.STUNPort < 0:
		r.add(SevWarning, "check.stun_off", "{{.Node}} turns STUN off (STUNPort -1), but this box answers STUN on udp {{.Want}}; clients lose the latency measurement that picks their home region.", Args{"Node": label, "Want": want.STUNPort})
	case got != want.STUNPort:
		r.add(SevError, "check.stun_port", "{{.Node}} says STUN port {{.Got}}{{if .Default}} (the default when the field is missing){{end}}, but this box answers STUN on udp {{.Want}}.", Args{"Node": label, "Got": got, "Default": n.STUNPort == 0, "Want": want.STUNPort})
	}
	switch {
	case want.CertName != "" && n.CertName == "" && !n.InsecureForTests:
		r.add(SevError, "check.no_certname", "{{.Node}} has no CertName, but this box serves a self-signed certificate: clients will refuse it. Add \"CertName\": {{printf \"%q\" .Pin}}.", Args{"Node": label, "Pin": want.CertName})
	case want.CertName != "" && n.CertName != "" && n.CertName != want.CertName:
		r.add(SevError, "check.other_pin", "{{.Node}} pins a different certificate ({{.Got}}) than the one this box serves ({{.Want}}); clients will refuse the connection. Copy the map again.", Args{"Node": label, "Got": n.CertName, "Want": want.CertName})
	case want.CertName == "" && spec.IsPin(n.CertName):
		r.add(SevError, "check.stale_pin", "{{.Node}} pins a self-signed certificate, but this box now serves a trusted one; remove CertName.", Args{"Node": label})
	}
	if n.InsecureForTests && !want.InsecureForTests {
		r.add(SevWarning, "check.insecure", "{{.Node}} has InsecureForTests: clients accept any certificate for it. This box's map does not need it.", Args{"Node": label})
	}
	for _, ip := range []struct{ field, v string }{{"IPv4", n.IPv4}, {"IPv6", n.IPv6}} {
		if ip.v != "" && ip.v != "none" {
			r.add(SevWarning, "check.fixed_ip", "{{.Node}} has a fixed {{.Field}} address ({{.Addr}}). This box's address changes; remove the field so clients look up {{.Host}} instead of trying a stale address.", Args{"Node": label, "Field": ip.field, "Addr": ip.v, "Host": want.HostName})
		}
	}
	if want.IPv4 == "none" && n.IPv4 != "none" {
		r.add(SevWarning, "check.ipv4_none", "{{.Node}} lacks \"IPv4\": \"none\": this line has no public IPv4, so clients waste time trying it.", Args{"Node": label})
	}
}

func effectivePort(p, def int) int {
	if p == 0 {
		return def
	}
	return p
}
