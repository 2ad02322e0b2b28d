package acmedns

import (
	"net/netip"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/homederp/homederp/ddns/alidns"
	"github.com/homederp/homederp/ddns/alidnstest"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/tencentcloud"
	"github.com/homederp/homederp/ddns/tencentcloudtest"
	"github.com/homederp/homederp/internal/pebbletest"
	"github.com/homederp/homederp/internal/testenv"
)

// apiEnv is a story for derp.zone with the challenge published through
// dns, a provider fake's API whose DNS side at dnsAddr serves zone, and a
// Pebble that validates against that DNS side; txt reads the challenge
// records the fake holds.
func apiEnv(t *testing.T, zone string, dnsAddr netip.AddrPort, dns certmagic.DNSProvider, txt func() []string) acmeEnv {
	return acmeEnv{
		host:     "derp." + zone,
		pebble:   pebbletest.Start(t, pebbletest.Options{DNSServer: dnsAddr.String(), Validity: 30 * time.Second, Logf: testLogf(t)}),
		dns:      dns,
		resolver: dnsAddr.String(),
		txt:      txt,
		validity: 30 * time.Second,
	}
}

// TestDNSPod is the story with the challenge published through the
// DNSPod (Tencent Cloud API 3.0) provider at its fake, served by the
// fake's DNS side, validated by Pebble.
func TestDNSPod(t *testing.T) {
	testenv.NeedLong(t)
	const zone = "dnspod.homederp.test"
	fake := tencentcloudtest.New(t, tencentcloudtest.Options{})
	fake.AddDomain(zone)
	fake.AddRecord(zone, "derp", "A", "192.0.2.10", 600)
	dnsAddr := fake.StartDNS(t, tencentcloudtest.DNSOptions{})
	id, key := fake.AddKey(tencentcloudtest.Key{Domains: []string{zone}})
	dns := tencentcloud.New(id, key, apiclient.Options{HTTP: fake.Client(), Logf: testLogf(t), MaxRetries: 1, MaxWait: time.Second})
	runStory(t, apiEnv(t, zone, dnsAddr, dns, func() (out []string) {
		for _, r := range fake.Records(zone, "_acme-challenge.derp", "TXT") {
			out = append(out, r.Value)
		}
		return out
	}), false)
	t.Logf("DNSPod API requests: %d in all, by action %v", fake.Requests(), fake.RequestsByRoute())
	if n := fake.Requests(); n > 20 {
		t.Errorf("%d DNSPod API requests for two certificates; want at most 20", n)
	}
	if recs := fake.Records(zone, "derp", "A"); len(recs) != 1 || recs[0].Value != "192.0.2.10" {
		t.Errorf("the A record: %+v, want it untouched", recs)
	}
}

// TestAliDNS is the same story through the AliDNS provider at its fake.
func TestAliDNS(t *testing.T) {
	testenv.NeedLong(t)
	const zone = "alidns.homederp.test"
	fake := alidnstest.New(t, alidnstest.Options{})
	fake.AddDomain(zone)
	fake.AddRecord(zone, "derp", "A", "192.0.2.10", 600)
	dnsAddr := fake.StartDNS(t, alidnstest.DNSOptions{})
	id, secret := fake.AddKey(alidnstest.Key{Domains: []string{zone}})
	dns := alidns.New(id, secret, apiclient.Options{HTTP: fake.Client(), Logf: testLogf(t), MaxRetries: 1, MaxWait: time.Second})
	runStory(t, apiEnv(t, zone, dnsAddr, dns, func() (out []string) {
		for _, r := range fake.Records(zone, "_acme-challenge.derp", "TXT") {
			out = append(out, r.Value)
		}
		return out
	}), false)
	t.Logf("AliDNS API requests: %d in all, by action %v", fake.Requests(), fake.RequestsByRoute())
	if n := fake.Requests(); n > 20 {
		t.Errorf("%d AliDNS API requests for two certificates; want at most 20", n)
	}
	if recs := fake.Records(zone, "derp", "A"); len(recs) != 1 || recs[0].Value != "192.0.2.10" {
		t.Errorf("the A record: %+v, want it untouched", recs)
	}
}
