package config

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestReverseProxy(t *testing.T) {
	behind := func(p ReverseProxy) Config {
		c := valid()
		p.Enabled = true
		c.ReverseProxy = p
		return c
	}
	t.Run("valid", func(t *testing.T) {
		c := behind(ReverseProxy{PublicHost: "relay.example.net", PublicPort: 443, Trusted: []string{"192.168.1.2", "10.0.0.0/24", "::ffff:192.168.1.3"}})
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		want := []netip.Prefix{netip.MustParsePrefix("192.168.1.2/32"), netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("192.168.1.3/32")}
		if got := c.ReverseProxy.TrustedPrefixes(); !slices.Equal(got, want) {
			t.Errorf("TrustedPrefixes: got %v, want %v", got, want)
		}
		if c.DialHost() != "relay.example.net" || c.DialPort() != 443 {
			t.Errorf("dial %s:%d, want the proxy's relay.example.net:443", c.DialHost(), c.DialPort())
		}
		c.ReverseProxy.PublicHost = ""
		if c.DialHost() != c.Hostname {
			t.Errorf("dial host %q without a public host, want the box's %q", c.DialHost(), c.Hostname)
		}
		c.ReverseProxy.Enabled = false
		if c.DialHost() != c.Hostname || c.DialPort() != c.Relay.DERPPort {
			t.Errorf("no proxy: dial %s:%d, want the box's %s:%d", c.DialHost(), c.DialPort(), c.Hostname, c.Relay.DERPPort)
		}
	})
	for _, tt := range []struct {
		name string
		p    ReverseProxy
		path string
		msg  string
	}{
		{"no port", ReverseProxy{Trusted: []string{"192.168.1.2"}}, "reverse_proxy.public_port", "usually 443"},
		{"bad host", ReverseProxy{PublicHost: "relay example", PublicPort: 443, Trusted: []string{"192.168.1.2"}}, "reverse_proxy.public_host", "not a valid DNS name"},
		{"no trusted address", ReverseProxy{PublicPort: 443}, "reverse_proxy.trusted", "whose X-Forwarded-For"},
		{"bad trusted address", ReverseProxy{PublicPort: 443, Trusted: []string{"nginx.lan"}}, "reverse_proxy.trusted", "not an IP address or prefix"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var errs Errors
			if !errors.As(behind(tt.p).Validate(), &errs) {
				t.Fatalf("Validate: got %v, want an Errors value", behind(tt.p).Validate())
			}
			if msgs := strings.Join(errs.For(tt.path), "\n"); !strings.Contains(msgs, tt.msg) {
				t.Errorf("Validate: %s: got %q, want a message containing %q (all: %v)", tt.path, msgs, tt.msg, errs)
			}
		})
	}
	t.Run("off: the rest is not checked", func(t *testing.T) {
		c := valid()
		c.ReverseProxy = ReverseProxy{PublicHost: "relay example"}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate with the proxy off: %v", err)
		}
	})
}
