package portmap

import (
	"net/netip"

	"tailscale.com/net/netmon"
)

// defaultGateway is the IPv4 default route's gateway, as tailscaled's
// portmapper finds it.
func defaultGateway() (netip.Addr, bool) {
	gw, _, ok := netmon.LikelyHomeRouterIP()
	return gw, ok
}
