package webui

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
)

// Steps 2 and 3: the ports (and the router's port-forward they need, or
// the reverse proxy in front of the relay) and the region the box forms
// in the DERP map.

// forwardView is the port-forward the user must make on the router, for
// the saved ports.
type forwardView struct {
	LAN   []string      `json:"lan"`             // the box's LAN IPv4 addresses
	Rules []forwardRule `json:"rules"`           // one per protocol
	IPv6  string        `json:"ipv6,omitempty"`  // the box's global IPv6, if known
	Guess bool          `json:"guess,omitempty"` // no LAN address found: the rules say "this box"
}

type forwardRule struct {
	What  string `json:"what"`  // e.g. "DERP (TLS)"
	Proto string `json:"proto"` // "TCP" or "UDP"
	Port  int    `json:"port"`  // outside and inside
	To    string `json:"to"`    // e.g. "192.168.1.23"
}

// forward works out the router's port-forward for c.
func (s *Server) forward(t *tr, c config.Config) forwardView {
	var v forwardView
	if s.o.LANAddrs != nil {
		for _, a := range s.o.LANAddrs() {
			if a.Is4() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
				v.LAN = append(v.LAN, a.String())
			}
		}
	}
	to := t.S("forward.rule.this_box")
	if len(v.LAN) > 0 {
		to = v.LAN[0]
	} else {
		v.Guess = true
	}
	v.Rules = []forwardRule{
		{t.S("forward.rule.derp"), "TCP", c.Relay.DERPPort, to},
		{t.S("forward.rule.stun"), "UDP", c.Relay.STUNPort, to},
	}
	switch {
	case c.ReverseProxy.Enabled && c.DialHost() != c.Hostname:
		// The proxy answers elsewhere (a VPS, say): only STUN (UDP)
		// comes to the home line.
		v.Rules = v.Rules[1:]
	case c.ReverseProxy.Enabled:
		v.Rules[0] = forwardRule{t.S("forward.rule.derp_proxy", "Port", c.Relay.DERPPort), "TCP", c.ReverseProxy.PublicPort, t.S("forward.rule.your_proxy")}
	}
	if c.PeerRelay.Enabled {
		v.Rules = append(v.Rules, forwardRule{t.S("forward.rule.peerrelay"), "UDP", c.PeerRelay.Port, to})
	}
	if s.o.DDNSStatus != nil {
		if ip := s.o.DDNSStatus().PublicIPv6; ip.IsValid() {
			v.IPv6 = ip.String()
		}
	}
	return v
}

func readPorts(t *tr, f url.Values, errs fieldErrs) change {
	derp, derpOK := atoi(t, errs, f, "relay.derp_port")
	stun, stunOK := atoi(t, errs, f, "relay.stun_port")
	mapping := checked(f, "port_mapping.enabled")
	rp := config.ReverseProxy{
		Enabled:    checked(f, "reverse_proxy.enabled"),
		PublicHost: strings.TrimSpace(f.Get("reverse_proxy.public_host")),
		Trusted:    strings.FieldsFunc(f.Get("reverse_proxy.trusted"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }),
	}
	// Empty stays 0, for validation to say what to enter.
	if strings.TrimSpace(f.Get("reverse_proxy.public_port")) != "" {
		rp.PublicPort, _ = atoi(t, errs, f, "reverse_proxy.public_port")
	}
	return func(c *config.Config) {
		if derpOK {
			c.Relay.DERPPort = derp
		}
		if stunOK {
			c.Relay.STUNPort = stun
		}
		c.PortMapping.Enabled = mapping
		c.ReverseProxy = rp
	}
}

// savePorts is step 2.
func (s *Server) savePorts(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	errs := fieldErrs{}
	if c, ok := s.apply(w, r, u, "ports", readPorts(t, r.PostForm, errs), errs); ok {
		s.done(w, r, u, "ports", s.portsOutcome(r.Context(), t, c))
	}
}

// relayApplyWait bounds how long a save of the ports waits to say what
// the relay did with them.
const relayApplyWait = 5 * time.Second

// portsOutcome says what was saved and what the relay did with it: it
// waits (at most relayApplyWait) for the relay to apply the ports.
func (s *Server) portsOutcome(ctx context.Context, t *tr, c config.Config) string {
	saved := t.S("flash.ports_saved", "DERP", c.Relay.DERPPort, "STUN", c.Relay.STUNPort)
	next := t.S("flash.ports_next_manual")
	if c.PortMapping.Enabled {
		next = t.S("flash.ports_next_mapping")
	}
	if c.ReverseProxy.Enabled {
		saved = t.S("flash.ports_proxy_saved", "Addr", net.JoinHostPort(c.DialHost(), strconv.Itoa(c.DialPort())), "DERP", c.Relay.DERPPort, "STUN", c.Relay.STUNPort)
		next = t.S("flash.ports_next_proxy")
	}
	if s.o.AwaitRelay == nil {
		return saved + next
	}
	ctx, cancel := context.WithTimeout(ctx, relayApplyWait)
	defer cancel()
	switch err := s.o.AwaitRelay(ctx, s.o.Store.Generation()); {
	case err == nil && c.ReverseProxy.Enabled:
		return saved + t.S("flash.ports_proxy_serving") + next
	case err == nil:
		return t.S("flash.ports_serving", "DERP", c.Relay.DERPPort, "STUN", c.Relay.STUNPort) + next
	case ctx.Err() != nil:
		return saved + t.S("flash.ports_switching")
	default:
		return saved + t.S("flash.ports_failed", "Err", err.Error())
	}
}

func readRegion(t *tr, f url.Values, errs fieldErrs) change {
	id, idOK := atoi(t, errs, f, "region.id")
	code := strings.TrimSpace(f.Get("region.code"))
	name := strings.TrimSpace(f.Get("region.name"))
	node := strings.TrimSpace(f.Get("region.node_name"))
	return func(c *config.Config) {
		if idOK {
			c.Region.ID = id
		}
		c.Region.Code, c.Region.Name, c.Region.NodeName = code, name, node
	}
}

// saveRegion is step 3.
func (s *Server) saveRegion(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	errs := fieldErrs{}
	c, ok := s.apply(w, r, u, "region", readRegion(t, r.PostForm, errs), errs)
	if ok {
		s.done(w, r, u, "region", t.S("flash.region", "ID", c.Region.ID, "Code", c.Region.Code))
	}
}
