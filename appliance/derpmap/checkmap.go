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
			if spec.IsPin(n.CertName) {
				if err := spec.CheckPin(n.CertName); err != nil {
					r.add(SevError, "%s: CertName %v; clients will refuse the connection.", label, err)
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
	case want.CertName == "" && spec.IsPin(n.CertName):
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
