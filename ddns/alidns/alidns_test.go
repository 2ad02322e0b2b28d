package alidns

import (
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/alidnstest"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/internal/providertest"
)

// story is AliDNS at its fake, for the story every API provider must
// pass.
var story = providertest.KeyPair[alidnstest.Fault]{
	Vendor: vendorName,
	Fake: func(t *testing.T, o alidnstest.Options) providertest.KeyPairFake[alidnstest.Fault] {
		return alidnstest.New(t, o)
	},
	New:       func(id, secret string, o apiclient.Options) providertest.Provider { return New(id, secret, o) },
	Line:      DefaultLine,
	OtherLine: "telecom",
	ZoneCalls: [2]string{"DescribeDomains", "DescribeDomainInfo"},
	Skew:      time.Hour,
	Errors: providertest.KeyErrors{
		UnknownID:   "does not know this AccessKey ID",
		WrongSecret: "secret does not belong to this AccessKey ID",
		Disabled:    "AccessKey is disabled",
		ReadOnly:    []string{"AliyunDNSFullAccess", "records of example.com", "Forbidden.RAM"},
		Clock:       "InvalidTimeStamp.Expired",
		Throttled:   "Throttling.User",
		Replay:      "SignatureNonceUsed",
	},
}

func TestCheck(t *testing.T) {
	story.Check(t,
		providertest.CheckCase{Name: "empty secret", ID: "LTAI0123456789abcdefghij", Secret: "", WantErr: "both the AccessKey ID and the AccessKey secret"},
		providertest.CheckCase{Name: "STS key", ID: "STS.NUgYrLnoC37mZZCNnAbez2MNc", Secret: "secret", WantErr: "temporary STS AccessKey"},
	)
}

// TestClockSkew: a box whose clock is an hour off hears that its clock
// is wrong, not that its key is.
func TestClockSkew(t *testing.T) { story.ClockSkew(t) }

func TestZoneFor(t *testing.T) { story.ZoneFor(t) }

func TestSetRecords(t *testing.T) { story.SetRecords(t) }

func TestRetries(t *testing.T) {
	story.Retries(t, []providertest.RetryCase[alidnstest.Fault]{
		{Name: "throttled once", Fault: alidnstest.Fault{Code: "Throttling.User"}, N: 1, Waits: "[1s]"},
		{Name: "unavailable twice", Fault: alidnstest.Fault{Status: 503, Code: "ServiceUnavailable"}, N: 2, Waits: "[1s 2s]"},
		{Name: "down", Fault: alidnstest.Fault{Status: 503, Code: "ServiceUnavailable"}, WantErr: "having trouble", Waits: "[1s 2s 4s]", Requests: 4},
		{Name: "throttled for long", Fault: alidnstest.Fault{Code: "Throttling.Api"}, WantErr: "rate-limiting this account", Waits: "[1s 2s 4s]", Requests: 4},
		{Name: "proxy error page", Fault: alidnstest.Fault{Status: 502, Body: "<html>502 Bad Gateway</html>"}, WantErr: "having trouble (HTTP 502", Waits: "[1s 2s 4s]", Requests: 4},
		{Name: "garbage", Fault: alidnstest.Fault{Status: 200, Body: "<html>portal</html>"}, WantErr: "not its API's JSON", Waits: "[]", Requests: 1},
	})
}

// TestRateLimit: past the fake's per-second limit AliDNS answers
// Throttling.User (HTTP 400), which the client treats as throttling, and
// every retry carries a fresh signature nonce (a reused one is refused).
func TestRateLimit(t *testing.T) { story.RateLimit(t) }
