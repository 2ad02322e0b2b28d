package ipclass

import "net/netip"

// cloudflareRanges are the networks Cloudflare announces for its proxy
// (published at https://www.cloudflare.com/ips-v4 and /ips-v6). An
// authoritative answer inside them means the record is proxied ("orange
// cloud"): the name then resolves to Cloudflare's anycast front-ends, which
// forward only HTTP(S) on a fixed port list and never UDP, so DERP on a
// custom port and STUN cannot reach the home line.
var cloudflareRanges = []netip.Prefix{
	netip.MustParsePrefix("173.245.48.0/20"),
	netip.MustParsePrefix("103.21.244.0/22"),
	netip.MustParsePrefix("103.22.200.0/22"),
	netip.MustParsePrefix("103.31.4.0/22"),
	netip.MustParsePrefix("141.101.64.0/18"),
	netip.MustParsePrefix("108.162.192.0/18"),
	netip.MustParsePrefix("190.93.240.0/20"),
	netip.MustParsePrefix("188.114.96.0/20"),
	netip.MustParsePrefix("197.234.240.0/22"),
	netip.MustParsePrefix("198.41.128.0/17"),
	netip.MustParsePrefix("162.158.0.0/15"),
	netip.MustParsePrefix("104.16.0.0/13"),
	netip.MustParsePrefix("104.24.0.0/14"),
	netip.MustParsePrefix("172.64.0.0/13"),
	netip.MustParsePrefix("131.0.72.0/22"),
	netip.MustParsePrefix("2400:cb00::/32"),
	netip.MustParsePrefix("2606:4700::/32"),
	netip.MustParsePrefix("2803:f800::/32"),
	netip.MustParsePrefix("2405:b500::/32"),
	netip.MustParsePrefix("2405:8100::/32"),
	netip.MustParsePrefix("2a06:98c0::/29"),
	netip.MustParsePrefix("2c0f:f248::/32"),
}

// IsCloudflare reports whether a is inside Cloudflare's proxy ranges.
func IsCloudflare(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range cloudflareRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CloudflareProxyAddrs are example front-end addresses from Cloudflare's
// ranges, one per family. The Cloudflare test fake answers DNS queries for
// proxied records with them, as Cloudflare does with its anycast addresses.
var CloudflareProxyAddrs = [2]netip.Addr{
	netip.MustParseAddr("104.16.132.229"),
	netip.MustParseAddr("2606:4700::6810:84e5"),
}
