// Package derpmap renders the DERP map of the box's home region from the
// running configuration, so the ports, names and region ID in the map a
// user pastes can never drift from what the relay serves.
package derpmap

import (
	"encoding/json"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/tailcfg"
)

// Options are the parts of the map that do not come from the config.
type Options struct {
	// PinnedCert is the DER of a self-signed certificate that clients
	// must pin ("CertName": "sha256-raw:<hex>"); nil when the relay
	// serves a certificate that clients trust anyway.
	PinnedCert []byte
	// NoIPv4 says the line has no public IPv4 (CGNAT, DS-Lite), so the
	// node gets "IPv4": "none" and clients do not try it.
	NoIPv4 bool
	// OmitDefaultRegions drops Tailscale's own regions, for a tailnet
	// that must relay only through this box.
	OmitDefaultRegions bool
}

// Region returns the home region. The node carries no IPv4 or IPv6
// address: the line's address changes, so clients resolve HostName (kept
// current by ddns) instead of trusting a stale literal.
//
// Behind a reverse proxy clients dial the proxy's host and port, and the
// proxy presents its own (trusted) certificate, so the node pins nothing.
// STUN cannot pass an HTTP proxy: when the proxy answers on another host,
// the region gets a second, STUN-only node for the box itself, and the
// proxy's node does no STUN.
func Region(c config.Config, o Options) *tailcfg.DERPRegion {
	n := &tailcfg.DERPNode{
		Name:     c.Region.NodeName,
		RegionID: c.Region.ID,
		HostName: c.DialHost(),
		DERPPort: c.DialPort(),
		STUNPort: c.Relay.STUNPort,
	}
	switch {
	case c.ReverseProxy.Enabled:
	case c.Cert.InsecureForTests && c.Cert.Mode == config.CertSelfSigned:
		n.InsecureForTests = true
	case o.PinnedCert != nil:
		n.CertName = spec.Pin(o.PinnedCert)
	}
	nodes := []*tailcfg.DERPNode{n}
	if n.HostName != c.Hostname {
		n.STUNPort = -1
		n = &tailcfg.DERPNode{
			Name:     c.Region.NodeName + "-stun",
			RegionID: c.Region.ID,
			HostName: c.Hostname,
			STUNPort: c.Relay.STUNPort,
			STUNOnly: true,
		}
		nodes = append(nodes, n)
	}
	if o.NoIPv4 {
		n.IPv4 = "none"
	}
	return &tailcfg.DERPRegion{
		RegionID:   c.Region.ID,
		RegionCode: c.Region.Code,
		RegionName: c.Region.Name,
		Nodes:      nodes,
	}
}

// Map returns a DERP map holding just the home region.
func Map(c config.Config, o Options) *tailcfg.DERPMap {
	return &tailcfg.DERPMap{
		Regions:            map[int]*tailcfg.DERPRegion{c.Region.ID: Region(c, o)},
		OmitDefaultRegions: o.OmitDefaultRegions,
	}
}

// JSON returns m indented, as Tailscale's policy file and headscale's
// derp.urls read it.
func JSON(m *tailcfg.DERPMap) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
