//go:build !linux

package portmap

import "net/netip"

// defaultGateway6 finds no IPv6 router outside Linux; pass
// Options.Gateway6 there.
func defaultGateway6() (netip.Addr, bool) { return netip.Addr{}, false }
