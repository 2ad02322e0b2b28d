package tencentcloud

import (
	"context"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/internal/providertest"
	"github.com/homederp/homederp/ddns/tencentcloudtest"
)

// story is DNSPod at its fake, for the story every API provider must
// pass.
var story = providertest.KeyPair[tencentcloudtest.Fault]{
	Vendor: vendorName,
	Fake: func(t *testing.T, o tencentcloudtest.Options) providertest.KeyPairFake[tencentcloudtest.Fault] {
		return tencentcloudtest.New(t, o)
	},
	New:       func(id, secret string, o apiclient.Options) providertest.Provider { return New(id, secret, o) },
	Line:      DefaultLine,
	OtherLine: "电信",
	ZoneCalls: [2]string{"DescribeDomainList", "DescribeDomain"},
	Skew:      -7 * time.Minute,
	Errors: providertest.KeyErrors{
		UnknownID:   "does not know this SecretId",
		WrongSecret: "SecretKey does not belong to this SecretId",
		Disabled:    "does not know this SecretId",
		ReadOnly:    []string{"QcloudDNSPodFullAccess", "DNSPod records of example.com"},
		Clock:       "AuthFailure.SignatureExpire",
		Throttled:   "RequestLimitExceeded",
	},
}

func TestCheck(t *testing.T) {
	story.Check(t,
		providertest.CheckCase{Name: "empty key", ID: "AKID0123456789abcdefghijklmnopqrstuv", Secret: " ", WantErr: "both the SecretId and the SecretKey"},
		providertest.CheckCase{Name: "DNSPod token", ID: "123456", Secret: "0123456789abcdef0123456789abcdef", WantErr: "DNSPod Token"},
	)
}

// TestCheckDomainStatus: a check with a hostname says when DNSPod holds
// the domain but cannot serve it.
func TestCheckDomainStatus(t *testing.T) {
	fake := tencentcloudtest.New(t, tencentcloudtest.Options{})
	fake.AddDomain("paused.example")
	fake.SetDomain("paused.example", func(d *tencentcloudtest.Domain) { d.Status = "PAUSE" })
	fake.AddDomain("elsewhere.example")
	fake.SetDomain("elsewhere.example", func(d *tencentcloudtest.Domain) { d.DNSStatus = "DNSERROR" })
	id, secret := fake.AddKey(tencentcloudtest.Key{})
	for _, tt := range []struct{ name, host, wantErr string }{
		{"paused domain", "derp.paused.example", "paused at DNSPod"},
		{"registrar not pointing at DNSPod", "derp.elsewhere.example", "f1g1ns1.dnspod.net and f1g1ns2.dnspod.net"},
	} {
		o, _ := providertest.Options(fake.Client())
		providertest.WantErr(t, tt.name, New(id, secret, o).Check(context.Background(), tt.host), tt.wantErr)
	}
	if fake.Writes() != 0 {
		t.Errorf("checks wrote %d records, want 0", fake.Writes())
	}
}

// TestClockSkew: a box whose clock is off by more than 5 minutes hears
// that its clock is wrong, not that its key is.
func TestClockSkew(t *testing.T) { story.ClockSkew(t) }

func TestZoneFor(t *testing.T) { story.ZoneFor(t) }

func TestSetRecords(t *testing.T) { story.SetRecords(t) }

func TestRetries(t *testing.T) {
	story.Retries(t, []providertest.RetryCase[tencentcloudtest.Fault]{
		{Name: "throttled once", Fault: tencentcloudtest.Fault{Code: "RequestLimitExceeded"}, N: 1, Waits: "[1s]"},
		{Name: "internal error twice", Fault: tencentcloudtest.Fault{Code: "InternalError"}, N: 2, Waits: "[1s 2s]"},
		{Name: "down", Fault: tencentcloudtest.Fault{Code: "InternalError"}, WantErr: "having trouble", Waits: "[1s 2s 4s]", Requests: 4},
		{Name: "throttled for long", Fault: tencentcloudtest.Fault{Code: "RequestLimitExceeded.UinLimitExceeded"}, WantErr: "rate-limiting this account", Waits: "[1s 2s 4s]", Requests: 4},
		{Name: "proxy error page", Fault: tencentcloudtest.Fault{Status: 502, Body: "<html>502 Bad Gateway</html>"}, WantErr: "having trouble (HTTP 502", Waits: "[1s 2s 4s]", Requests: 4},
		{Name: "garbage", Fault: tencentcloudtest.Fault{Status: 200, Body: "<html>portal</html>"}, WantErr: "not its API's JSON", Waits: "[]", Requests: 1},
	})
}

// TestRateLimit: past the fake's per-second limit DNSPod answers
// RequestLimitExceeded (HTTP 200), which the client treats as throttling.
func TestRateLimit(t *testing.T) { story.RateLimit(t) }
