package acmedns

import (
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/homederp/homederp/ddns/alidns"
	"github.com/homederp/homederp/ddns/alidnstest"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/tencentcloud"
	"github.com/homederp/homederp/ddns/tencentcloudtest"
	"github.com/homederp/homederp/internal/pebbletest"
	"github.com/homederp/homederp/internal/testenv"
)

// TestKeyPairProviders is the story with the challenge published through
// the DNSPod (Tencent Cloud API 3.0) and the AliDNS providers, each at its
// fake, served by the fake's DNS side, validated by Pebble.
func TestKeyPairProviders(t *testing.T) {
	testenv.NeedLong(t)
	for _, tt := range []struct {
		vendor, zone string
		fake         func(testing.TB) ddnstest.KeyPairFake
		provider     func(id, secret string, o apiclient.Options) certmagic.DNSProvider
	}{
		{"DNSPod", "dnspod.homederp.test",
			func(t testing.TB) ddnstest.KeyPairFake { return tencentcloudtest.New(t, tencentcloudtest.Options{}) },
			func(id, secret string, o apiclient.Options) certmagic.DNSProvider {
				return tencentcloud.New(id, secret, o)
			}},
		{"AliDNS", "alidns.homederp.test",
			func(t testing.TB) ddnstest.KeyPairFake { return alidnstest.New(t, alidnstest.Options{}) },
			func(id, secret string, o apiclient.Options) certmagic.DNSProvider { return alidns.New(id, secret, o) }},
	} {
		t.Run(tt.vendor, func(t *testing.T) {
			fake := tt.fake(t)
			fake.AddDomain(tt.zone)
			fake.AddRecord(tt.zone, "derp", "A", "192.0.2.10", 600)
			dnsAddr := fake.StartDNS(t, ddnstest.AuthorityOptions{})
			id, secret := fake.AddKey(ddnstest.Key{Domains: []string{tt.zone}})
			runStory(t, acmeEnv{
				host:     "derp." + tt.zone,
				pebble:   pebbletest.Start(t, pebbletest.Options{DNSServer: dnsAddr.String(), Validity: 30 * time.Second, Logf: testLogf(t)}),
				dns:      tt.provider(id, secret, apiclient.Options{HTTP: fake.Client(), Logf: testLogf(t), MaxRetries: 1, MaxWait: time.Second}),
				resolver: dnsAddr.String(),
				txt: func() (out []string) {
					for _, r := range fake.Records(tt.zone, "_acme-challenge.derp", "TXT") {
						out = append(out, r.Value)
					}
					return out
				},
				validity: 30 * time.Second,
			}, false)
			t.Logf("%s API requests: %d in all, by action %v", tt.vendor, fake.Requests(), fake.RequestsByRoute())
			if n := fake.Requests(); n > 20 {
				t.Errorf("%d %s API requests for two certificates; want at most 20", n, tt.vendor)
			}
			if recs := fake.Records(tt.zone, "derp", "A"); len(recs) != 1 || recs[0].Value != "192.0.2.10" {
				t.Errorf("the A record: %+v, want it untouched", recs)
			}
		})
	}
}
