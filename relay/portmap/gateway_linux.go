package portmap

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// defaultGateway6 is the IPv6 default route's gateway, usually the
// router's link-local address, with the interface as its zone.
func defaultGateway6() (netip.Addr, bool) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() != "::/0" || r.Gw == nil {
			continue
		}
		gw, ok := netip.AddrFromSlice(r.Gw)
		if !ok {
			continue
		}
		if gw.IsLinkLocalUnicast() {
			ifi, err := net.InterfaceByIndex(r.LinkIndex)
			if err != nil {
				continue
			}
			gw = gw.WithZone(ifi.Name)
		}
		return gw, true
	}
	return netip.Addr{}, false
}
