package config

// PeerRelay makes the box's tailscaled a Tailscale peer relay as well: a
// node that forwards UDP between two peers that cannot reach each other
// directly, end to end encrypted, without TLS or TCP on the box. It is
// tailscaled's RelayServerPort preference (`tailscale set
// --relay-server-port`), set through the LocalAPI; peers use it only once
// the tailnet policy grants them tailscale.com/cap/relay on the box.
type PeerRelay struct {
	Enabled bool `json:"enabled"`
	// Port is the UDP port tailscaled relays on, e.g. 40000; the router
	// forwards it to the box like the STUN port. It is kept while the
	// relay is off, so switching it on again reuses the port forwarded.
	Port int `json:"port"`
}

// DefaultPeerRelayPort is the port a fresh box offers, the one
// Tailscale's own documentation uses in its examples.
const DefaultPeerRelayPort = 40000

// tailscaledPort is the UDP port the box's tailscaled uses for WireGuard
// (tailscaled's --port default, which the gokrazy instance leaves alone).
const tailscaledPort = 41641

// ActivePort is the port tailscaled should relay on: Port when the relay
// is on, 0 when it is off.
func (p PeerRelay) ActivePort() int {
	if !p.Enabled {
		return 0
	}
	return p.Port
}

func defaultPeerRelay() PeerRelay { return PeerRelay{Port: DefaultPeerRelayPort} }

func (c Config) validatePeerRelay(errs *Errors) {
	p := c.PeerRelay.Port
	checkPort(errs, "peer_relay.port", p)
	if !c.PeerRelay.Enabled {
		return
	}
	// Every other port the box answers on: tailscaled binds the relay
	// port on all addresses, so a UDP port taken by STUN or by tailscaled
	// itself would keep the relay from starting, and the TCP ones would
	// muddle the router's port-forwards.
	switch p {
	case c.Relay.STUNPort:
		errs.add("peer_relay.port", "setting.peer_relay_is_stun", "udp {{.Port}} is the STUN port; the peer relay needs a port of its own (e.g. {{.Default}})", Args{"Port": p, "Default": DefaultPeerRelayPort})
	case c.Relay.DERPPort:
		errs.add("peer_relay.port", "setting.peer_relay_is_derp", "{{.Port}} is the DERP port; give the peer relay a port of its own (e.g. {{.Default}}) so the router's port-forwards stay clear", Args{"Port": p, "Default": DefaultPeerRelayPort})
	case tailscaledPort:
		errs.add("peer_relay.port", "setting.peer_relay_is_wireguard", "udp {{.Port}} is the box's tailscaled's own WireGuard port; choose another (e.g. {{.Default}})", Args{"Port": p, "Default": DefaultPeerRelayPort})
	case 68:
		errs.add("peer_relay.port", "setting.peer_relay_is_dhcp", "udp 68 is the box's DHCP client; choose another port (e.g. {{.Default}})", Args{"Default": DefaultPeerRelayPort})
	case 80, 8080, 8443:
		errs.add("peer_relay.port", "setting.peer_relay_is_web", "port {{.Port}} belongs to the box's web interfaces; choose another (e.g. {{.Default}})", Args{"Port": p, "Default": DefaultPeerRelayPort})
	}
}
