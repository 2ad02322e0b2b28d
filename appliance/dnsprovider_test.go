package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns/alidnstest"
	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/tencentcloudtest"
	"github.com/homederp/homederp/internal/testwait"
)

// TestDDNSServiceKeyPairs: with DNSPod or AliDNS chosen, the box asks for
// the key pair, checks one without writing, and once it is saved (one
// secret file) publishes the A record with the plan's 600 s TTL.
func TestDDNSServiceKeyPairs(t *testing.T) {
	for _, tt := range []struct {
		provider, missing string
		fake              func(testing.TB) ddnstest.KeyPairFake
	}{
		{config.ProviderTencentCloud, "No Tencent Cloud API key is saved yet",
			func(t testing.TB) ddnstest.KeyPairFake { return tencentcloudtest.New(t, tencentcloudtest.Options{}) }},
		{config.ProviderAliDNS, "No Alibaba Cloud AccessKey is saved yet",
			func(t testing.TB) ddnstest.KeyPairFake { return alidnstest.New(t, alidnstest.Options{}) }},
	} {
		t.Run(tt.provider, func(t *testing.T) {
			f := tt.fake(t)
			f.AddDomain("example.com")
			id, secret := f.AddKey(ddnstest.Key{})
			key := config.KeyPair{ID: id, Secret: secret}
			h, _ := loopbackDDNS(t, f.StartDNS(t, ddnstest.AuthorityOptions{}), "203.0.113.9")
			h.httpClient = f.Client()
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
			wrong := config.KeyPair{ID: key.ID, Secret: strings.Repeat("x", len(key.Secret))}
			if err := a.ddns.checkCredential(ctx, c, wrong.Encode()); err == nil || !strings.Contains(err.Error(), "does not belong to") {
				t.Errorf("checkCredential(wrong secret): got %v, want a signature error", err)
			}
			if err := a.ddns.checkCredential(ctx, c, key.Encode()); err != nil {
				t.Fatalf("checkCredential(good key): %v", err)
			}
			if f.Writes() != 0 {
				t.Errorf("checking wrote %d records", f.Writes())
			}
			a.setSecret(t, config.ProviderSecret(tt.provider), key.Encode())
			testwait.For(t, 20*time.Second, "the A record", func() error {
				if st := a.ddns.Status(); len(st.ServedA) != 1 || st.ServedA[0] != netip.MustParseAddr("203.0.113.9") {
					return fmt.Errorf("served A: %v (%s)", st.ServedA, st.LastError)
				}
				return nil
			})
			if recs := f.Records("example.com", "derp", "A"); len(recs) != 1 || recs[0].Value != "203.0.113.9" || recs[0].TTL != 600 {
				t.Errorf("derp A at the fake: got %+v, want one 203.0.113.9 with TTL 600", recs)
			}
		})
	}
}
