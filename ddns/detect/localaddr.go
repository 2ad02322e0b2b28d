package detect

import (
	"net/netip"
	"strings"

	"github.com/homederp/homederp/ddns/ipclass"
)

// IfAddr is one address configured on one of the box's interfaces.
type IfAddr struct {
	Interface string       // e.g. "eth0"
	Prefix    netip.Prefix // e.g. 2001:db8:1::10/64
	// Temporary marks an RFC 8981 privacy address: it is replaced every
	// day or so and must never be published.
	Temporary bool
	// Deprecated marks an address whose preferred lifetime ran out (the
	// router stopped announcing its prefix, or it is an old temporary
	// address): it will go away.
	Deprecated bool
	// Tentative marks an address still in (or failed) duplicate address
	// detection: it does not work yet.
	Tentative bool
}

// StableIPv6 returns the box's stable global IPv6 addresses in the order
// given: not temporary, not deprecated, not tentative, not on a Tailscale
// interface and publishable by ipclass.Check (which also rules out ULAs,
// link-local and tailnet addresses).
func StableIPv6(addrs []IfAddr) (stable []netip.Addr, temporaryOnly bool) {
	sawTemp := false
	for _, a := range addrs {
		ip := a.Prefix.Addr()
		if !ip.Is6() || ip.Is4In6() || isTailscaleIf(a.Interface) || ipclass.Check(ip) != ipclass.OK {
			continue
		}
		if a.Temporary {
			sawTemp = true
			continue
		}
		if a.Deprecated || a.Tentative {
			continue
		}
		stable = append(stable, ip)
	}
	return stable, len(stable) == 0 && sawTemp
}

// isTailscaleIf reports whether name is a Tailscale tunnel interface,
// whose addresses belong to the tailnet and never to the line.
func isTailscaleIf(name string) bool {
	return strings.HasPrefix(name, "tailscale") || name == "utun" || strings.HasPrefix(name, "ts")
}
