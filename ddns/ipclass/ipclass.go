// Package ipclass says whether an address may be published as the relay's
// public address, and why not in plain words when it may not.
//
// Go's netip predicates do not flag the shared address space 100.64.0.0/10
// (RFC 6598, used by carrier-grade NAT and by Tailscale for tailnet
// addresses), so an updater that trusts IsGlobalUnicast && !IsPrivate would
// publish a CGNAT or tailnet address. Every address the updater writes goes
// through Publishable first.
package ipclass

import (
	"net/netip"

	"tailscale.com/net/tsaddr"
)

// Reason says why an address is not publishable. The zero value means it
// is publishable.
type Reason string

const (
	OK          Reason = ""
	Invalid     Reason = "not an address"
	Unspecified Reason = "the unspecified address"
	Loopback    Reason = "a loopback address"
	LinkLocal   Reason = "a link-local address"
	Multicast   Reason = "a multicast address"
	Private     Reason = "a private (RFC 1918 / ULA) address that is not reachable from the Internet"
	Shared      Reason = "in 100.64.0.0/10, the range carriers use for CGNAT and Tailscale uses for tailnet addresses"
	Tailnet     Reason = "a Tailscale tailnet address (fd7a:115c:a1e0::/48)"
	Cloudflare  Reason = "inside Cloudflare's own ranges (a proxy or WARP address, not this line)"
	Mapped      Reason = "an IPv4-mapped IPv6 address"
	Reserved    Reason = "in a reserved range"
)

// Check returns OK if a is an address the relay's hostname may point at,
// or the reason it may not. Documentation ranges (192.0.2.0/24,
// 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) are accepted so that test
// beds built from network namespaces can use them as "public" addresses.
func Check(a netip.Addr) Reason {
	switch {
	case !a.IsValid():
		return Invalid
	case a.Is4In6():
		return Mapped
	case a.IsUnspecified():
		return Unspecified
	case a.IsLoopback():
		return Loopback
	case a.IsLinkLocalUnicast():
		return LinkLocal
	case a.IsMulticast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast():
		return Multicast
	case a.Is4() && tsaddr.CGNATRange().Contains(a):
		return Shared
	case a.Is6() && tsaddr.TailscaleULARange().Contains(a):
		return Tailnet
	case a.IsPrivate():
		return Private
	case IsCloudflare(a):
		return Cloudflare
	case !a.IsGlobalUnicast():
		return Reserved
	case a.Is4() && reserved4(a):
		return Reserved
	}
	return OK
}

// IsShared reports whether a is in 100.64.0.0/10 (RFC 6598): behind
// carrier-grade NAT the router's WAN address is in this range.
func IsShared(a netip.Addr) bool { return a.Is4() && tsaddr.CGNATRange().Contains(a.Unmap()) }

// reserved4 covers IPv4 ranges that IsGlobalUnicast accepts but that are
// never a home line's public address: 0/8, 192.0.0.0/24 (IETF protocol
// assignments, DS-Lite's B4 addresses live in 192.0.0.0/29), 198.18.0.0/15
// (benchmarking) and 240.0.0.0/4.
func reserved4(a netip.Addr) bool {
	for _, p := range reservedV4 {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var reservedV4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// reasonIDs are the Reasons' IDs in the web UI's catalogues
// (webui/locales).
var reasonIDs = map[Reason]string{
	Invalid:     "reason.invalid",
	Unspecified: "reason.unspecified",
	Loopback:    "reason.loopback",
	LinkLocal:   "reason.link_local",
	Multicast:   "reason.multicast",
	Private:     "reason.private",
	Shared:      "reason.shared",
	Tailnet:     "reason.tailnet",
	Cloudflare:  "reason.cloudflare",
	Mapped:      "reason.mapped",
	Reserved:    "reason.reserved",
}

// UserMessage is r as a message of the web UI's catalogues, for a sentence
// that names it.
func (r Reason) UserMessage() (id string, args map[string]any) { return reasonIDs[r], nil }
