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

func (s *Server) reach(t *tr, c config.Config, rs *relay.Status, ps *portmap.Status, ds *ddns.Status, dns dnsView) reachView {
	v := reachView{MappingOn: c.PortMapping.Enabled, Mapping: ps}
	fwd := s.forward(t, c)
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
		v.Router = t.S("reach.mapping_off")
	case ps == nil:
		v.Router = t.S("reach.mapping_unavailable")
	case ps.AllMapped():
		var via []string
		for _, m := range ps.Mappings {
			if !m.IPv6 && m.Via != "" && !slices.Contains(via, m.Via) {
				via = append(via, m.Via)
			}
		}
		v.Router = t.S("reach.mapped", "Ports", joinAnd(t, done), "Via", strings.Join(via, ", "))
	case ps.LastRound.IsZero() && ps.Problem == "":
		v.Router = t.S("reach.not_asked")
	default:
		v.Router = t.text(ps.Texts.Problem, ps.Problem)
	}
	if ps != nil && ps.Hairpin != nil {
		v.HairpinOK = ps.Hairpin.OK
		to := ps.Hairpin.To
		if to == "" {
			to = t.S("reach.its_public_address")
		}
		v.Hairpin = t.S("reach.hairpin", "To", to, "Detail", t.text(ps.Hairpin.DetailText, ps.Hairpin.Detail))
	}

	if rs != nil && rs.Reach.Clients > 0 {
		v.Proven = true
		v.Evidence = t.N("reach.proven", rs.Reach.Clients, "Last", rs.Reach.Last.UTC().Format("2006-01-02 15:04:05 UTC"), "From", rs.Reach.LastFrom)
		return v
	}
	v.Evidence = t.S("reach.unproven")
	if rs != nil && rs.Reach.LANConnections > 0 {
		v.Evidence += t.N("reach.lan", int(rs.Reach.LANConnections))
	}
	if len(v.ManualForward) > 0 {
		v.Checks = append(v.Checks, t.S("reach.check_forward", "Forward", forwardText(t, v.ManualForward)))
	}
	if ps != nil && ps.ExternalProblem != "" {
		v.Checks = append(v.Checks, t.text(ps.Texts.ExternalProblem, ps.ExternalProblem))
	} else if ds != nil && (ds.NoIPv4 || ds.CGNAT) {
		v.Checks = append(v.Checks, t.S("reach.check_cgnat"))
	}
	if ps != nil && ps.IPv6 != "" && ps.Texts.IPv6.ID != "router.ipv6_open" && ps.Texts.IPv6.ID != "router.firewall_off" {
		v.Checks = append(v.Checks, t.text(ps.Texts.IPv6, ps.IPv6))
	}
	if dns.Match == "no" {
		v.Checks = append(v.Checks, t.S("reach.check_dns", "Host", c.Hostname))
	}
	v.Checks = append(v.Checks, t.S("reach.check_client"), t.S("reach.check_carrier"))
	return v
}

// forwardText says where rules go, for people: "TCP 12345 and UDP 3478
// to 192.168.1.23", or with a reverse proxy "TCP 443 to your reverse
// proxy and UDP 3478 to 192.168.1.23".
func forwardText(t *tr, rules []forwardRule) string {
	var parts, ports []string
	for i, r := range rules {
		ports = append(ports, fmt.Sprintf("%s %d", r.Proto, r.Port))
		if i == len(rules)-1 || rules[i+1].To != r.To {
			parts = append(parts, t.S("reach.ports_to", "Ports", joinAnd(t, ports), "To", r.To))
			ports = nil
		}
	}
	return joinAnd(t, parts)
}

// joinAnd lists words for people: "a", "a and b", "a, b and c".
func joinAnd(t *tr, ws []string) string {
	if len(ws) < 2 {
		return strings.Join(ws, "")
	}
	return t.S("word.and", "List", strings.Join(ws[:len(ws)-1], t.S("word.comma")), "Last", ws[len(ws)-1])
}
