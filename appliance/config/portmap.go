package config

// PortMapping configures the box asking the home router to forward the
// relay's ports to it (PCP, NAT-PMP or UPnP-IGD) and to open IPv6
// pinholes for them.
type PortMapping struct {
	// Enabled asks the router. On by default: forwarding is the step
	// where home setups fail most, most home routers grant it, and one
	// that refuses costs a few datagrams. Off, the box removes what it
	// asked for and the user forwards the ports by hand.
	Enabled bool `json:"enabled"`
}
