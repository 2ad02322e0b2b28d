package ipclass

import (
	"net/netip"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		addr string
		want Reason
	}{
		{"203.0.113.9", OK},
		{"198.51.100.7", OK},
		{"2001:db8::10", OK},
		{"2a01:4f8::1", OK},
		{"8.8.8.8", OK},
		{"", Invalid},
		{"0.0.0.0", Unspecified},
		{"::", Unspecified},
		{"127.0.0.1", Loopback},
		{"::1", Loopback},
		{"169.254.1.1", LinkLocal},
		{"fe80::1", LinkLocal},
		{"224.0.0.1", Multicast},
		{"ff02::1", Multicast},
		{"10.0.0.1", Private},
		{"192.168.1.10", Private},
		{"172.16.5.5", Private},
		{"fd00::1", Private},
		{"100.64.0.1", Shared},
		{"100.101.102.103", Shared}, // a tailnet address
		{"100.127.255.254", Shared},
		{"fd7a:115c:a1e0::1", Tailnet},
		{"104.16.132.229", Cloudflare},
		{"2606:4700::6810:84e5", Cloudflare},
		{"::ffff:203.0.113.9", Mapped},
		{"192.0.0.2", Reserved}, // DS-Lite B4
		{"198.18.0.1", Reserved},
		{"240.0.0.1", Reserved},
		{"0.1.2.3", Reserved},
	}
	for _, tt := range tests {
		var a netip.Addr
		if tt.addr != "" {
			a = netip.MustParseAddr(tt.addr)
		}
		if got := Check(a); got != tt.want {
			t.Errorf("Check(%v): got %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestProxyAddrsAreCloudflare(t *testing.T) {
	for _, a := range CloudflareProxyAddrs {
		if !IsCloudflare(a) {
			t.Errorf("IsCloudflare(%v): got false, want true", a)
		}
	}
}
