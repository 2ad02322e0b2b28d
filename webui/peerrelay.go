package webui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/relay/peerrelay"
	"tailscale.com/client/local"
	"tailscale.com/ipn"
)

// The peer relay is an optional extra beside DERP: the box's tailscaled
// also relays UDP between nodes of the tailnet that cannot reach each
// other directly. The switch lives on the setup page, what the tailnet
// policy needs lives on the DERP map page next to the map, and what
// tailscaled reports (port, running, sessions) on the status page. The
// switch sets tailscaled's preference through the LocalAPI
// (peerrelay.Apply); the appliance keeps it set.

// peerRelayView is the peer relay as the pages show it.
type peerRelayView struct {
	Enabled bool `json:"enabled"` // the configuration's switch
	Port    int  `json:"port"`    // the configuration's port, e.g. 40000

	// What the box's tailscaled says; Error when it could not.
	Tailscaled  *peerrelay.Status `json:"tailscaled,omitempty"`
	Error       string            `json:"error,omitempty"`
	Unsupported bool              `json:"unsupported,omitempty"` // tailscaled has no relay server
	Sessions    int               `json:"sessions"`              // established sessions
	Bytes       uint64            `json:"bytes"`                 // relayed in the current sessions

	// For the policy: how it names the box's node ("" until logged in),
	// the grant to paste, and whether the box uses a control server
	// other than Tailscale's (headscale).
	Box       string `json:"box,omitempty"`
	Grant     string `json:"grant,omitempty"`
	Headscale bool   `json:"headscale"`
}

// Applied says tailscaled relays as the configuration asks.
func (v peerRelayView) Applied() bool {
	return v.Tailscaled != nil && v.Tailscaled.Port == config.PeerRelay{Enabled: v.Enabled, Port: v.Port}.ActivePort()
}

// boxPlaceholder names the box in the grant before its tailscaled is
// logged in (or when it cannot be asked).
const boxPlaceholder = "tag:homederp"

// peerRelayState asks the box's tailscaled about its peer relay, briefly.
func (s *Server) peerRelayState(ctx context.Context, t *tr, c config.Config) peerRelayView {
	v := peerRelayView{
		Enabled:   c.PeerRelay.Enabled,
		Port:      c.PeerRelay.Port,
		Headscale: c.Tailnet.ControlURL != "" && c.Tailnet.ControlURL != ipn.DefaultControlURL,
	}
	if lc := s.tailscaled(c); lc != nil {
		ctx, cancel := context.WithTimeout(ctx, tailnetAskTimeout)
		defer cancel()
		v.ask(ctx, t, lc)
	} else {
		v.Error = t.S("tailscaled.none")
	}
	name := v.Box
	if name == "" {
		name = boxPlaceholder
	}
	v.Grant = string(peerrelay.Grant(name))
	return v
}

// ask fills in what tailscaled reports.
func (v *peerRelayView) ask(ctx context.Context, t *tr, lc *local.Client) {
	if st, err := lc.StatusWithoutPeers(ctx); err == nil && st.Self != nil {
		var tags []string
		if st.Self.Tags != nil {
			tags = st.Self.Tags.AsSlice()
		}
		v.Box = peerrelay.PolicyName(tags, st.TailscaleIPs)
	}
	st, err := peerrelay.Read(ctx, lc)
	switch {
	case errors.Is(err, peerrelay.ErrUnsupported):
		v.Unsupported = true
		v.Error = t.S("peerrelay.unsupported")
	case err != nil:
		v.Error = t.S("tailscaled.unreachable", "Err", plainLocalAPIError(t, err))
		return
	}
	v.Tailscaled = &st
	for _, ss := range st.Sessions {
		if ss.Established() {
			v.Sessions++
		}
		v.Bytes += ss.Bytes()
	}
}

// peerRelayWarnings are the status page's warnings about the peer relay:
// only when it is meant to be on, or tailscaled relays against the switch.
func peerRelayWarnings(t *tr, v peerRelayView) []string {
	var ws []string
	st := v.Tailscaled
	switch {
	case !v.Enabled:
		if st != nil && st.Port != 0 {
			ws = append(ws, t.S("peerrelay.warn.still_on", "Port", st.Port))
		}
	case v.Unsupported:
		ws = append(ws, t.S("peerrelay.warn.unsupported"))
	case st == nil:
		ws = append(ws, t.S("peerrelay.warn.unknown", "Port", v.Port, "Err", v.Error))
	case st.Port != v.Port:
		ws = append(ws, t.S("peerrelay.warn.pending", "Port", v.Port))
	case !st.Running:
		ws = append(ws, t.S("peerrelay.warn.not_running", "Port", v.Port))
	}
	return ws
}

func readPeerRelay(t *tr, f url.Values, errs fieldErrs) change {
	enabled := checked(f, "peer_relay.enabled")
	port, portOK := atoi(t, errs, f, "peer_relay.port")
	return func(c *config.Config) {
		c.PeerRelay.Enabled = enabled
		if portOK {
			c.PeerRelay.Port = port
		}
	}
}

// savePeerRelay is the setup page's peer relay switch: save the
// configuration, then tell the box's tailscaled.
func (s *Server) savePeerRelay(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	errs := fieldErrs{}
	c, ok := s.apply(w, r, u, "peerrelay", readPeerRelay(t, r.PostForm, errs), errs)
	if !ok {
		return
	}
	state := t.S("peerrelay.status.off")
	if c.PeerRelay.Enabled {
		state = t.S("peerrelay.status.on", "Port", c.PeerRelay.Port)
	}
	lc := s.tailscaled(c)
	if lc == nil {
		s.done(w, r, u, "peerrelay", t.S("flash.peerrelay_no_tailscaled", "State", state))
		return
	}
	ctx, cancel := reqCtx(r, 10*time.Second)
	defer cancel()
	if _, err := peerrelay.Apply(ctx, lc, c.PeerRelay.ActivePort()); err != nil {
		s.o.Logf("webui: peer relay: %v", err)
		s.done(w, r, u, "peerrelay", t.S("flash.peerrelay_not_told", "State", state, "Err", plainLocalAPIError(t, err)))
		return
	}
	if !c.PeerRelay.Enabled {
		s.done(w, r, u, "peerrelay", t.S("flash.peerrelay_off"))
		return
	}
	s.done(w, r, u, "peerrelay", t.S("flash.peerrelay_on", "Port", c.PeerRelay.Port))
}
