// Package peerrelay makes a tailscaled a Tailscale peer relay and reports
// on it, over tailscaled's LocalAPI (tailscale.com/client/local), as
// `tailscale set --relay-server-port` and `tailscale debug
// peer-relay-sessions` do.
//
// A peer relay forwards UDP between two nodes of a tailnet that cannot
// reach each other directly. For a box on a home line it often beats
// DERP: the packets stay UDP end to end, no TLS or TCP on the box, and the
// path is as short as the box is close. The relay server is upstream's
// (tailscale.com/feature/relayserver, which cmd/tailscaled includes unless
// built with ts_omit_relayserver); this package only sets the preference
// and reads the state, never tailscaled's files.
//
// The preference alone is not enough: a node allocates relay endpoints on
// the box only when the tailnet policy grants it tailscale.com/cap/relay
// on the box's node (see Grant), and the control server must support such
// grants.
package peerrelay

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"tailscale.com/client/local"
	"tailscale.com/ipn"
	"tailscale.com/net/udprelay/status"
)

// Apply sets tailscaled's relay server port (ipn.Prefs.RelayServerPort):
// port 1–65535 relays on that UDP port, 0 turns the relay off. tailscaled
// keeps the preference in its own state, across restarts. Apply reads the
// preference first and edits it only when it differs, so calling it again
// with the same port is cheap and changes nothing; changed says whether
// it edited.
func Apply(ctx context.Context, lc *local.Client, port int) (changed bool, err error) {
	if port < 0 || port > 65535 {
		return false, fmt.Errorf("peer relay port %d is not 0 (off) or a port number", port)
	}
	prefs, err := lc.GetPrefs(ctx)
	if err != nil {
		return false, fmt.Errorf("reading tailscaled's preferences: %w", err)
	}
	if prefPort(prefs) == port {
		return false, nil
	}
	mp := &ipn.MaskedPrefs{RelayServerPortSet: true}
	if port != 0 {
		p := uint16(port)
		mp.RelayServerPort = &p
	}
	if _, err := lc.EditPrefs(ctx, mp); err != nil {
		return false, fmt.Errorf("setting tailscaled's relay server port to %d: %w", port, err)
	}
	return true, nil
}

// Advertise sets the addresses tailscaled offers peers for its relay
// server besides those it finds itself (ipn.Prefs
// RelayServerStaticEndpoints), e.g. the line's public IPv4 with the UDP
// port the router forwards: tailscaled learns its public address only by
// STUN, and a home router that does not hairpin can keep the box from
// reaching the STUN server it runs itself. nil offers none. Like Apply, it
// edits only when the preference differs.
func Advertise(ctx context.Context, lc *local.Client, addrs []netip.AddrPort) (changed bool, err error) {
	prefs, err := lc.GetPrefs(ctx)
	if err != nil {
		return false, fmt.Errorf("reading tailscaled's preferences: %w", err)
	}
	if slices.Equal(prefs.RelayServerStaticEndpoints, addrs) {
		return false, nil
	}
	mp := &ipn.MaskedPrefs{RelayServerStaticEndpointsSet: true}
	mp.RelayServerStaticEndpoints = addrs
	if _, err := lc.EditPrefs(ctx, mp); err != nil {
		return false, fmt.Errorf("setting the addresses tailscaled offers for its relay to %v: %w", addrs, err)
	}
	return true, nil
}

// ErrUnsupported means the tailscaled has no peer relay server: it was
// built with ts_omit_relayserver, or predates peer relays.
var ErrUnsupported = errors.New("this tailscaled has no peer relay server")

// prefPort is the relay server port in prefs, 0 when off. (tailscaled's
// own 0, "any free port", cannot be forwarded by a router, so this
// package never sets it.)
func prefPort(p *ipn.Prefs) int {
	if p == nil || p.RelayServerPort == nil {
		return 0
	}
	return int(*p.RelayServerPort)
}

// Status is a tailscaled's peer relay as it reports it.
type Status struct {
	// Port is the relay server port in tailscaled's preferences, e.g.
	// 40000; 0 when the relay is off.
	Port int `json:"port"`
	// Advertised are the addresses tailscaled offers besides those it
	// finds itself (Advertise), e.g. ["203.0.113.7:40000"].
	Advertised []string `json:"advertised,omitempty"`
	// Running says tailscaled's relay server is up: it bound its UDP
	// sockets. A preference without a running server means the port is
	// taken on the box, or the control server disabled relaying for this
	// node (node attribute disable-relay-server).
	Running bool `json:"running"`
	// Sessions are the peer pairs the box relays for now.
	Sessions []Session `json:"sessions"`
}

// Session is one pair of peers relaying through the box.
type Session struct {
	VNI     uint32    `json:"vni"` // the session's Geneve virtual network identifier
	Clients [2]Client `json:"clients"`
}

// Client is one side of a Session, as the relay server sees it.
type Client struct {
	// Endpoint is where the peer's packets come from, e.g.
	// "203.0.113.7:41641"; empty until it completed the handshake.
	Endpoint string `json:"endpoint,omitempty"`
	Disco    string `json:"disco"` // short disco key, e.g. "d:1234abcd"
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
}

// Established says both peers of s completed the handshake with the box.
func (s Session) Established() bool {
	return s.Clients[0].Endpoint != "" && s.Clients[1].Endpoint != ""
}

// Bytes is what the box relayed for s, both directions.
func (s Session) Bytes() uint64 { return s.Clients[0].Bytes + s.Clients[1].Bytes }

// Read asks tailscaled for its relay server port and sessions. It returns
// ErrUnsupported (with the preference, if any) when tailscaled has no
// relay server.
func Read(ctx context.Context, lc *local.Client) (Status, error) {
	prefs, err := lc.GetPrefs(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("reading tailscaled's preferences: %w", err)
	}
	st := Status{Port: prefPort(prefs), Sessions: []Session{}}
	for _, a := range prefs.RelayServerStaticEndpoints {
		st.Advertised = append(st.Advertised, a.String())
	}
	ss, err := lc.DebugPeerRelaySessions(ctx)
	if err != nil {
		if msg := err.Error(); strings.HasPrefix(msg, "404 ") || strings.Contains(msg, "extension unavailable") {
			return st, ErrUnsupported
		}
		return st, fmt.Errorf("reading tailscaled's peer relay sessions: %w", err)
	}
	st.Running = ss.UDPPort != nil
	for _, s := range ss.Sessions {
		st.Sessions = append(st.Sessions, Session{VNI: s.VNI, Clients: [2]Client{client(s.Client1), client(s.Client2)}})
	}
	return st, nil
}

func client(c status.ClientInfo) Client {
	out := Client{Disco: c.ShortDisco, Packets: c.PacketsTx, Bytes: c.BytesTx}
	if c.Endpoint.IsValid() {
		out.Endpoint = c.Endpoint.String()
	}
	return out
}
