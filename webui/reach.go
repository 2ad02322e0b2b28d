package webui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/portmap"
)

// reachView is the status page's "Reachable from outside": what the
// router said (port mapping), a hairpin check labelled as the weak
// evidence it is, and the strong evidence: DERP clients that connected
// from public addresses.
type reachView struct {
	Proven   bool     `json:"proven"`
	Evidence string   `json:"evidence"`         // "Reached from the Internet by …" or "Not yet proven …"
	Checks   []string `json:"checks,omitempty"` // what to check while not proven

	MappingOn bool            `json:"port_mapping_enabled"`
	Router    string          `json:"router"` // what the router does, in a sentence
	Mapping   *portmap.Status `json:"port_mapping,omitempty"`
	Hairpin   string          `json:"hairpin,omitempty"`
	HairpinOK bool            `json:"hairpin_ok,omitempty"`
	// ManualForward is the port-forward to make by hand, shown while the
	// router does not forward the ports itself.
	ManualForward []forwardRule `json:"manual_forward,omitempty"`
}

func (s *Server) reach(c config.Config, rs *relay.Status, ps *portmap.Status, ds *ddns.Status, dns dnsView) reachView {
	v := reachView{MappingOn: c.PortMapping.Enabled, Mapping: ps}
	fwd := s.forward(c)
	// A forward the router keeps for the box needs nothing from the
	// user; every other one (all of them while the router refuses, and
	// a reverse proxy's, which the box cannot ask for) is shown to make
	// by hand.
	forwarded := map[string]bool{}
	if ps != nil {
		for _, m := range ps.Mappings {
			if m.OK && !m.IPv6 {
				forwarded[strings.ToUpper(m.Proto)+" "+strconv.Itoa(int(m.Port.Port))] = true
			}
		}
	}
	var done []string
	for _, r := range fwd.Rules {
		name := fmt.Sprintf("%s %d", r.Proto, r.Port)
		if forwarded[name] && len(fwd.LAN) > 0 && r.To == fwd.LAN[0] {
			done = append(done, name)
			continue
		}
		v.ManualForward = append(v.ManualForward, r)
	}
	switch {
	case !c.PortMapping.Enabled:
		v.Router = "Port mapping is off (Setup, step 2): the router forwards only what you set up on it by hand."
	case ps == nil:
		v.Router = "The port-mapping status is not available."
	case ps.AllMapped():
		var via []string
		for _, m := range ps.Mappings {
			if !m.IPv6 && m.Via != "" && !slices.Contains(via, m.Via) {
				via = append(via, m.Via)
			}
		}
		v.Router = fmt.Sprintf("The router forwards %s to this box (asked over %s); the box renews the forward before its lease ends.", joinAnd(done), strings.Join(via, ", "))
	case ps.LastRound.IsZero() && ps.Problem == "":
		v.Router = "The box has not asked the router yet."
	default:
		v.Router = ps.Problem
	}
	if ps != nil && ps.Hairpin != nil {
		v.HairpinOK = ps.Hairpin.OK
		to := ps.Hairpin.To
		if to == "" {
			to = "its public address"
		}
		v.Hairpin = fmt.Sprintf("Hairpin check (the box dialling %s through the router, as a client on the Internet would): %s.", to, ps.Hairpin.Detail)
	}

	if rs != nil && rs.Reach.Clients > 0 {
		v.Proven = true
		v.Evidence = fmt.Sprintf("Reached from the Internet by %d %s, last at %s from %s.",
			rs.Reach.Clients, plural(rs.Reach.Clients, "client", "clients"), rs.Reach.Last.UTC().Format("2006-01-02 15:04:05 UTC"), rs.Reach.LastFrom)
		return v
	}
	v.Evidence = "Not yet proven reachable from the Internet: no DERP client has connected from a public address since the relay started."
	if rs != nil && rs.Reach.LANConnections > 0 {
		v.Evidence += fmt.Sprintf(" (%d %s from the LAN do not count.)", rs.Reach.LANConnections, plural(int(rs.Reach.LANConnections), "connection", "connections"))
	}
	if len(v.ManualForward) > 0 {
		v.Checks = append(v.Checks, fmt.Sprintf("The router forwards %s (the table below), or allows UPnP so the box can ask.", forwardText(v.ManualForward)))
	}
	if ps != nil && ps.ExternalProblem != "" {
		v.Checks = append(v.Checks, ps.ExternalProblem)
	} else if ds != nil && (ds.NoIPv4 || ds.CGNAT) {
		v.Checks = append(v.Checks, "The line has no public IPv4 address (CGNAT): only clients with IPv6 can reach the box; ask the carrier for a public IPv4 address.")
	}
	if ps != nil && ps.IPv6 != "" && !strings.HasPrefix(ps.IPv6, "Open") && !strings.HasPrefix(ps.IPv6, "The router's IPv6 firewall is off") {
		v.Checks = append(v.Checks, ps.IPv6)
	}
	if dns.Match == "no" {
		v.Checks = append(v.Checks, fmt.Sprintf("DNS serves the wrong address for %s (see Address and DNS).", c.Hostname))
	}
	v.Checks = append(v.Checks,
		"A client away from home (a phone on mobile data) has the DERP map with this region and uses it: "+
			"tailscale netcheck tests only STUN, so it does not prove that the DERP port is open.",
		"Some carriers block inbound connections to home lines on some ports; try another DERP port (Setup, step 2).")
	return v
}

// forwardText says where rules go, for people: "TCP 12345 and UDP 3478
// to 192.168.1.23", or with a reverse proxy "TCP 443 to your reverse
// proxy and UDP 3478 to 192.168.1.23".
func forwardText(rules []forwardRule) string {
	var parts, ports []string
	for i, r := range rules {
		ports = append(ports, fmt.Sprintf("%s %d", r.Proto, r.Port))
		if i == len(rules)-1 || rules[i+1].To != r.To {
			parts = append(parts, joinAnd(ports)+" to "+r.To)
			ports = nil
		}
	}
	return joinAnd(parts)
}

// joinAnd lists words for people: "a", "a and b", "a, b and c".
func joinAnd(ws []string) string {
	if len(ws) < 2 {
		return strings.Join(ws, "")
	}
	return strings.Join(ws[:len(ws)-1], ", ") + " and " + ws[len(ws)-1]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
