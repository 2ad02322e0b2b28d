package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidateDDNS(t *testing.T) {
	cloudflare := func(c *Config) { c.DDNS.Provider = ProviderCloudflare }
	rfc := func(c *Config) {
		c.DDNS.Provider = ProviderRFC2136
		c.DDNS.RFC2136 = RFC2136{Server: "ns1.example.com:53", KeyName: "homederp.", KeyAlgorithm: "hmac-sha256."}
	}
	for _, tt := range []struct {
		name string
		edit func(c *Config)
		path string // "" = valid
		msg  string // substring of the message
	}{
		{"no provider", func(c *Config) {}, "", ""},
		{"cloudflare", cloudflare, "", ""},
		{"tencentcloud", func(c *Config) { c.DDNS.Provider = ProviderTencentCloud }, "", ""},
		{"alidns", func(c *Config) { c.DDNS.Provider = ProviderAliDNS }, "", ""},
		{"rfc2136", rfc, "", ""},
		{"rfc2136 with IP server and zone", func(c *Config) {
			rfc(c)
			c.DDNS.RFC2136.Server = "192.0.2.53:53"
			c.DDNS.RFC2136.Zone = "example.com."
		}, "", ""},
		{"unknown provider", func(c *Config) { c.DDNS.Provider = "route53" }, "ddns.provider", "unknown DNS provider"},
		{"IP hostname", func(c *Config) { cloudflare(c); c.Hostname = "203.0.113.9" }, "ddns.provider", "not an IP address"},
		{"no family", func(c *Config) { cloudflare(c); c.DDNS.IPv4, c.DDNS.IPv6 = false, false }, "ddns.ipv4", "neither"},
		{"interval too short", func(c *Config) { cloudflare(c); c.DDNS.Interval = Duration(10 * time.Second) }, "ddns.interval", "30s–24h"},
		{"rfc2136 server without port", func(c *Config) { rfc(c); c.DDNS.RFC2136.Server = "ns1.example.com" }, "ddns.rfc2136.server", "host:port"},
		{"rfc2136 server port 0", func(c *Config) { rfc(c); c.DDNS.RFC2136.Server = "ns1.example.com:0" }, "ddns.rfc2136.server", "host:port"},
		{"rfc2136 no key", func(c *Config) { rfc(c); c.DDNS.RFC2136.KeyName = "" }, "ddns.rfc2136.key_name", "missing"},
		{"rfc2136 bad algorithm", func(c *Config) { rfc(c); c.DDNS.RFC2136.KeyAlgorithm = "md5" }, "ddns.rfc2136.key_algorithm", "not a supported"},
		{"rfc2136 bad zone", func(c *Config) { rfc(c); c.DDNS.RFC2136.Zone = "exa mple" }, "ddns.rfc2136.zone", "not a DNS name"},
		{"custom STUN", func(c *Config) {
			c.DDNS.STUNServers = []string{"stun.example.net:3478", "[2001:db8::1]:3478", "198.51.100.1:3478"}
		}, "", ""},
		{"one STUN server", func(c *Config) { c.DDNS.STUNServers = []string{"stun.example.net:3478"} }, "ddns.stun_servers", "at least 2"},
		{"STUN without port", func(c *Config) { c.DDNS.STUNServers = []string{"stun.example.net", "198.51.100.1:3478"} }, "ddns.stun_servers", "host:port"},
		{"STUN bad port", func(c *Config) { c.DDNS.STUNServers = []string{"stun.example.net:99999", "198.51.100.1:3478"} }, "ddns.stun_servers", "host:port"},
		{"whoami DoT", func(c *Config) {
			c.DDNS.Whoami = []WhoamiServer{{Addr: "1.1.1.1:853", TLSName: "cloudflare-dns.com"}, {Addr: "1.0.0.1:53"}}
		}, "", ""},
		{"whoami by name", func(c *Config) { c.DDNS.Whoami = []WhoamiServer{{Addr: "one.one.one.one:853"}} }, "ddns.whoami", "IPv4 address"},
		{"whoami over IPv6", func(c *Config) { c.DDNS.Whoami = []WhoamiServer{{Addr: "[2606:4700:4700::1111]:853"}} }, "ddns.whoami", "IPv4 address"},
		{"whoami bad TLS name", func(c *Config) { c.DDNS.Whoami = []WhoamiServer{{Addr: "1.1.1.1:853", TLSName: "not a name"}} }, "ddns.whoami", "certificate"},
		{"resolvers", func(c *Config) { c.DDNS.Resolvers = []string{"192.168.1.1:53", "[2001:db8::53]:53"} }, "", ""},
		{"resolver without port", func(c *Config) { c.DDNS.Resolvers = []string{"192.168.1.1"} }, "ddns.resolvers", "with port"},
	} {
		c := valid()
		tt.edit(&c)
		err := c.Validate()
		if tt.path == "" {
			if err != nil {
				t.Errorf("%s: got %v, want valid", tt.name, err)
			}
			continue
		}
		es, ok := err.(Errors)
		if !ok {
			t.Errorf("%s: got %v, want Errors", tt.name, err)
			continue
		}
		msgs := es.For(tt.path)
		if len(msgs) == 0 || !strings.Contains(strings.Join(msgs, " "), tt.msg) {
			t.Errorf("%s: messages for %s: got %q (all: %v), want one containing %q", tt.name, tt.path, msgs, err, tt.msg)
		}
	}
}

func TestDDNSRoundTrip(t *testing.T) {
	c := valid()
	c.DDNS.Provider = ProviderCloudflare
	c.DDNS.STUNServers = []string{"stun.example.net:3478", "198.51.100.1:3478"}
	c.DDNS.Whoami = []WhoamiServer{{Addr: "1.1.1.1:853", TLSName: "cloudflare-dns.com"}}
	c.DDNS.Resolvers = []string{"192.168.1.1:53"}
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"stun_servers"`, `"whoami"`, `"tls_name"`, `"resolvers"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("encoded config lacks %s:\n%s", key, b)
		}
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// An older document without the new fields still parses, with the
	// defaults (empty lists).
	old := `{"version": 1, "hostname": "derp.example.com", "ddns": {"provider": "cloudflare", "ipv4": true, "ipv6": false, "interval": "5m"}}`
	got, err = Parse([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if got.DDNS.STUNServers != nil || got.DDNS.Whoami != nil || time.Duration(got.DDNS.Interval) != 5*time.Minute || got.DDNS.IPv6 {
		t.Errorf("old document: got %+v", got.DDNS)
	}
}

// TestKeyPairSecret: a two-part key is one 0600 secret file, read back
// as it was saved, and never shown by %v.
func TestKeyPairSecret(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := KeyPair{ID: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", Secret: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"}
	if err := s.SetSecret(ProviderSecret(ProviderTencentCloud), "  "+want.Encode()+"\n"); err != nil {
		t.Fatal(err)
	}
	v, err := s.Secret(SecretTencentCloud)
	if err != nil {
		t.Fatal(err)
	}
	if got := ParseKeyPair(v); got != want {
		t.Errorf("ParseKeyPair: got %+v, want %+v", got, want)
	}
	if got := fmt.Sprint(want); strings.Contains(got, want.Secret) {
		t.Errorf("fmt.Sprint(KeyPair): got %q, which shows the secret", got)
	}
	for provider, want := range map[string]string{ProviderCloudflare: SecretCloudflareToken, ProviderAliDNS: SecretAliDNS, ProviderRFC2136: SecretTSIG, ProviderNone: ""} {
		if got := ProviderSecret(provider); got != want {
			t.Errorf("ProviderSecret(%q): got %q, want %q", provider, got, want)
		}
	}
	if got := ProviderName(ProviderAliDNS); got != "AliDNS (Alibaba Cloud)" {
		t.Errorf("ProviderName(alidns): got %q", got)
	}
}
