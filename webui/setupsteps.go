package webui

import (
	"context"
	"fmt"
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
func (s *Server) forward(c config.Config) forwardView {
	var v forwardView
	if s.o.LANAddrs != nil {
		for _, a := range s.o.LANAddrs() {
			if a.Is4() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
				v.LAN = append(v.LAN, a.String())
			}
		}
	}
	to := "this box's LAN address"
	if len(v.LAN) > 0 {
		to = v.LAN[0]
	} else {
		v.Guess = true
	}
	v.Rules = []forwardRule{
		{"DERP (TLS)", "TCP", c.Relay.DERPPort, to},
		{"STUN", "UDP", c.Relay.STUNPort, to},
	}
	switch {
	case c.ReverseProxy.Enabled && c.DialHost() != c.Hostname:
		// The proxy answers elsewhere (a VPS, say): only STUN (UDP)
		// comes to the home line.
		v.Rules = v.Rules[1:]
	case c.ReverseProxy.Enabled:
		v.Rules[0] = forwardRule{"DERP (TLS), to your reverse proxy, which forwards to TCP " + strconv.Itoa(c.Relay.DERPPort) + " on this box", "TCP", c.ReverseProxy.PublicPort, "your reverse proxy"}
	}
	if c.PeerRelay.Enabled {
		v.Rules = append(v.Rules, forwardRule{"Tailscale peer relay", "UDP", c.PeerRelay.Port, to})
	}
	if s.o.DDNSStatus != nil {
		if ip := s.o.DDNSStatus().PublicIPv6; ip.IsValid() {
			v.IPv6 = ip.String()
		}
	}
	return v
}

func readPorts(f url.Values, errs fieldErrs) change {
	derp, derpOK := atoi(errs, f, "relay.derp_port")
	stun, stunOK := atoi(errs, f, "relay.stun_port")
	mapping := checked(f, "port_mapping.enabled")
	rp := config.ReverseProxy{
		Enabled:    checked(f, "reverse_proxy.enabled"),
		PublicHost: strings.TrimSpace(f.Get("reverse_proxy.public_host")),
		Trusted:    strings.FieldsFunc(f.Get("reverse_proxy.trusted"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }),
	}
	// Empty stays 0, for validation to say what to enter.
	if strings.TrimSpace(f.Get("reverse_proxy.public_port")) != "" {
		rp.PublicPort, _ = atoi(errs, f, "reverse_proxy.public_port")
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
	errs := fieldErrs{}
	if c, ok := s.apply(w, r, u, "ports", readPorts(r.PostForm, errs), errs); ok {
		s.done(w, r, u, "ports", "%s", s.portsOutcome(r.Context(), c))
	}
}

// relayApplyWait bounds how long a save of the ports waits to say what
// the relay did with them.
const relayApplyWait = 5 * time.Second

// portsOutcome says what was saved and what the relay did with it: it
// waits (at most relayApplyWait) for the relay to apply the ports.
func (s *Server) portsOutcome(ctx context.Context, c config.Config) string {
	saved := fmt.Sprintf("Saved the ports: TCP %d for DERP, UDP %d for STUN.", c.Relay.DERPPort, c.Relay.STUNPort)
	next := "Make the router's port-forward match."
	if c.PortMapping.Enabled {
		next = "The box asks the router to forward them; Status shows what it answered."
	}
	if c.ReverseProxy.Enabled {
		saved = fmt.Sprintf("Saved: clients reach the relay through your reverse proxy at %s; it forwards to TCP %d on this box, and STUN stays on UDP %d.",
			net.JoinHostPort(c.DialHost(), strconv.Itoa(c.DialPort())), c.Relay.DERPPort, c.Relay.STUNPort)
		next = "Paste the new DERP map where you use it."
	}
	if s.o.AwaitRelay == nil {
		return saved + " " + next
	}
	ctx, cancel := context.WithTimeout(ctx, relayApplyWait)
	defer cancel()
	switch err := s.o.AwaitRelay(ctx, s.o.Store.Generation()); {
	case err == nil && c.ReverseProxy.Enabled:
		return saved + " The relay serves them. " + next
	case err == nil:
		return fmt.Sprintf("Saved the ports: the relay now serves DERP on TCP %d and STUN on UDP %d. %s", c.Relay.DERPPort, c.Relay.STUNPort, next)
	case ctx.Err() != nil:
		return saved + " The relay is still switching to them; Status shows when it is done."
	default:
		return fmt.Sprintf("%s But the relay could not start on them: %v. It is not running; choose ports that are free, or free them (it tries again by itself).", saved, err)
	}
}

func readRegion(f url.Values, errs fieldErrs) change {
	id, idOK := atoi(errs, f, "region.id")
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
	errs := fieldErrs{}
	c, ok := s.apply(w, r, u, "region", readRegion(r.PostForm, errs), errs)
	if ok {
		s.done(w, r, u, "region", "Saved region %d (%s). Paste the new DERP map where you use it.", c.Region.ID, c.Region.Code)
	}
}
