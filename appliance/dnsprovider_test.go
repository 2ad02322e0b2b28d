package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns/alidnstest"
	"github.com/homederp/homederp/ddns/tencentcloudtest"
	"github.com/homederp/homederp/internal/testwait"
)

// TestDDNSServiceKeyPairs: with DNSPod or AliDNS chosen, the box asks for
// the key pair, checks one without writing, and once it is saved (one
// secret file) publishes the A record with the plan's 600 s TTL.
func TestDDNSServiceKeyPairs(t *testing.T) {
	type fake struct {
		client  *http.Client
		dnsAddr netip.AddrPort
		key     config.KeyPair
		derpA   func() []string // "value ttl"
		writes  func() int
	}
	for _, tt := range []struct {
		provider, missing string
		start             func(t *testing.T) fake
	}{
		{config.ProviderTencentCloud, "No Tencent Cloud API key is saved yet", func(t *testing.T) fake {
			f := tencentcloudtest.New(t, tencentcloudtest.Options{})
			f.AddDomain("example.com")
			id, secret := f.AddKey(tencentcloudtest.Key{})
			return fake{f.Client(), f.StartDNS(t, tencentcloudtest.DNSOptions{}), config.KeyPair{ID: id, Secret: secret}, func() (out []string) {
				for _, r := range f.Records("example.com", "derp", "A") {
					out = append(out, fmt.Sprintf("%s %d", r.Value, r.TTL))
				}
				return out
			}, f.Writes}
		}},
		{config.ProviderAliDNS, "No Alibaba Cloud AccessKey is saved yet", func(t *testing.T) fake {
			f := alidnstest.New(t, alidnstest.Options{})
			f.AddDomain("example.com")
			id, secret := f.AddKey(alidnstest.Key{})
			return fake{f.Client(), f.StartDNS(t, alidnstest.DNSOptions{}), config.KeyPair{ID: id, Secret: secret}, func() (out []string) {
				for _, r := range f.Records("example.com", "derp", "A") {
					out = append(out, fmt.Sprintf("%s %d", r.Value, r.TTL))
				}
				return out
			}, f.Writes}
		}},
	} {
		t.Run(tt.provider, func(t *testing.T) {
			f := tt.start(t)
			h, _ := loopbackDDNS(t, f.dnsAddr, "203.0.113.9")
			h.httpClient = f.client
			a := startDev(t, options{hooks: h})

			a.save(t, func(c *config.Config) {
				c.Hostname = "derp.example.com"
				c.DDNS.Provider = tt.provider
				c.DDNS.IPv6 = false
			})
			c := a.store.Config()
			if st := a.ddns.Status(); !strings.Contains(st.LastError, tt.missing) || st.Provider != config.ProviderName(tt.provider) {
				t.Errorf("without a key: got %+v, want %q", st, tt.missing)
			}
			ctx := context.Background()
			wrong := config.KeyPair{ID: f.key.ID, Secret: strings.Repeat("x", len(f.key.Secret))}
			if err := a.ddns.checkCredential(ctx, c, wrong.Encode()); err == nil || !strings.Contains(err.Error(), "does not belong to") {
				t.Errorf("checkCredential(wrong secret): got %v, want a signature error", err)
			}
			if err := a.ddns.checkCredential(ctx, c, f.key.Encode()); err != nil {
				t.Fatalf("checkCredential(good key): %v", err)
			}
			if f.writes() != 0 {
				t.Errorf("checking wrote %d records", f.writes())
			}
			a.setSecret(t, config.ProviderSecret(tt.provider), f.key.Encode())
			testwait.For(t, 20*time.Second, "the A record", func() error {
				if st := a.ddns.Status(); len(st.ServedA) != 1 || st.ServedA[0] != netip.MustParseAddr("203.0.113.9") {
					return fmt.Errorf("served A: %v (%s)", st.ServedA, st.LastError)
				}
				return nil
			})
			if got := f.derpA(); len(got) != 1 || got[0] != "203.0.113.9 600" {
				t.Errorf("derp A at the fake: got %q, want [203.0.113.9 600]", got)
			}
		})
	}
}
