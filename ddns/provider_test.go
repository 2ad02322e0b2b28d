package ddns

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/alidns"
	"github.com/homederp/homederp/ddns/alidnstest"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/cloudflare"
	"github.com/homederp/homederp/ddns/cloudflaretest"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/ddns/tencentcloud"
	"github.com/homederp/homederp/ddns/tencentcloudtest"
	"github.com/homederp/homederp/internal/bindtest"
)

// kindOf returns the kind ClassifyCheck gives a check's error, or "ok".
func kindOf(t *testing.T, err error) CheckKind {
	t.Helper()
	if err == nil {
		return "ok"
	}
	err = ClassifyCheck(err)
	var ce *CheckError
	if !errors.As(err, &ce) || ce.Error() == "" {
		t.Fatalf("ClassifyCheck(%v) = %#v, want a *CheckError with text", err, err)
	}
	return ce.Kind
}

// noWait keeps the API clients' retries from waiting in tests.
func noWait(context.Context, time.Duration) error { return nil }

type checkCase struct {
	name   string
	check  func(ctx context.Context) error
	before func()
	want   CheckKind
}

func runCheckCases(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, tt := range cases {
		if tt.before != nil {
			tt.before()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := tt.check(ctx)
		cancel()
		t.Logf("%s: %v", tt.name, err)
		if got := kindOf(t, err); got != tt.want {
			t.Errorf("%s: got kind %q (%v), want %q", tt.name, got, err, tt.want)
		}
	}
}

// TestCheckKinds: every way a credential check fails against the
// providers' fakes (and a real BIND 9) is classified, so the web UI can
// tell "the box cannot reach the provider" from "the provider does not
// know this credential" and "the credential may not do this".
func TestCheckKinds(t *testing.T) {
	const host = "derp.example.com"
	t.Run("Cloudflare", func(t *testing.T) {
		fake := cloudflaretest.New(t, cloudflaretest.Options{})
		fake.AddZone("example.com")
		fake.AddZone("example.org")
		check := func(token string) func(context.Context) error {
			return func(ctx context.Context) error {
				return cloudflare.New(token, apiclient.Options{HTTP: fake.Client(), Sleep: noWait}).Check(ctx, host)
			}
		}
		good := fake.AddToken(cloudflaretest.Token{})
		runCheckCases(t, []checkCase{
			{"good", check(good), nil, "ok"},
			{"unknown token", check(strings.Repeat("Z", 40)), nil, CheckBadCredential},
			{"malformed token", check("abc"), nil, CheckBadCredential},
			{"disabled token", check(fake.AddToken(cloudflaretest.Token{Status: "disabled"})), nil, CheckBadCredential},
			{"token for another zone", check(fake.AddToken(cloudflaretest.Token{Zones: []string{"example.org"}})), nil, CheckRefused},
			{"Bearer pasted too (no call made)", check("Bearer " + good), nil, ""},
			{"Cloudflare has trouble", check(good), func() { fake.SetDown(&cloudflaretest.Fault{Status: 503}) }, CheckUnreachable},
			{"a proxy's page", check(good), func() {
				fake.SetDown(&cloudflaretest.Fault{Status: 200, Body: "<html>captive portal</html>", ContentType: "text/html"})
			}, CheckUnreachable},
			{"Cloudflare cannot be reached", check(good), func() { fake.SetDown(nil); fake.Close() }, CheckUnreachable},
		})
	})
	t.Run("DNSPod", func(t *testing.T) {
		fake := tencentcloudtest.New(t, tencentcloudtest.Options{})
		fake.AddDomain("example.com")
		fake.AddDomain("example.org")
		check := func(id, key string) func(context.Context) error {
			return func(ctx context.Context) error {
				return tencentcloud.New(id, key, apiclient.Options{HTTP: fake.Client(), Sleep: noWait}).Check(ctx, host)
			}
		}
		id, key := fake.AddKey(tencentcloudtest.Key{})
		otherID, otherKey := fake.AddKey(tencentcloudtest.Key{Domains: []string{"example.org"}})
		offID, offKey := fake.AddKey(tencentcloudtest.Key{Disabled: true})
		runCheckCases(t, []checkCase{
			{"good", check(id, key), nil, "ok"},
			{"unknown SecretId", check("AKID"+strings.Repeat("x", 32), key), nil, CheckBadCredential},
			{"SecretKey of another key", check(id, otherKey), nil, CheckBadCredential},
			{"disabled key", check(offID, offKey), nil, CheckBadCredential},
			{"key for another domain", check(otherID, otherKey), nil, CheckRefused},
			{"DNSPod has trouble", check(id, key), func() {
				fake.SetDown(&tencentcloudtest.Fault{Code: "InternalError", Message: "An internal error has occurred."})
			}, CheckUnreachable},
			{"DNSPod cannot be reached", check(id, key), func() { fake.SetDown(nil); fake.Close() }, CheckUnreachable},
		})
	})
	t.Run("AliDNS", func(t *testing.T) {
		fake := alidnstest.New(t, alidnstest.Options{})
		fake.AddDomain("example.com")
		fake.AddDomain("example.org")
		check := func(id, secret string) func(context.Context) error {
			return func(ctx context.Context) error {
				return alidns.New(id, secret, apiclient.Options{HTTP: fake.Client(), Sleep: noWait}).Check(ctx, host)
			}
		}
		id, secret := fake.AddKey(alidnstest.Key{})
		otherID, otherSecret := fake.AddKey(alidnstest.Key{Domains: []string{"example.org"}})
		offID, offSecret := fake.AddKey(alidnstest.Key{Disabled: true})
		runCheckCases(t, []checkCase{
			{"good", check(id, secret), nil, "ok"},
			{"unknown AccessKey", check("LTAI"+strings.Repeat("x", 20), secret), nil, CheckBadCredential},
			{"secret of another AccessKey", check(id, otherSecret), nil, CheckBadCredential},
			{"disabled AccessKey", check(offID, offSecret), nil, CheckBadCredential},
			{"AccessKey for another domain", check(otherID, otherSecret), nil, CheckRefused},
			{"AliDNS has trouble", check(id, secret), func() {
				fake.SetDown(&alidnstest.Fault{Status: 503, Code: "ServiceUnavailable", Message: "The request has failed due to a temporary failure of the server."})
			}, CheckUnreachable},
			{"AliDNS cannot be reached", check(id, secret), func() { fake.SetDown(nil); fake.Close() }, CheckUnreachable},
		})
	})
	t.Run("RFC 2136", func(t *testing.T) {
		srv := bindtest.Start(t, bindtest.Options{Zone: "example.com.", Records: []string{"derp 60 IN A 192.0.2.1"}})
		// A port nothing listens on: bind one, then close it.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		check := func(host string, modify func(*rfc2136.Provider)) func(context.Context) error {
			return func(ctx context.Context) error {
				p := &rfc2136.Provider{Server: srv.Addr.String(), Zone: srv.Zone, KeyName: srv.KeyName,
					KeyAlgorithm: srv.KeyAlgorithm, Secret: srv.Secret, Timeout: 5 * time.Second}
				if modify != nil {
					modify(p)
				}
				return p.CheckKey(ctx, host)
			}
		}
		runCheckCases(t, []checkCase{
			{"right key", check(host, nil), nil, "ok"},
			{"wrong secret", check(host, func(p *rfc2136.Provider) { p.Secret = "c2VjcmV0LXRoYXQtaXMtd3Jvbmctc2VjcmV0LXRoYXQ=" }), nil, CheckBadCredential},
			{"unknown key name", check(host, func(p *rfc2136.Provider) { p.KeyName = "someone-else." }), nil, CheckBadCredential},
			{"zone the server does not serve", check("derp.example.net", func(p *rfc2136.Provider) { p.Zone = "example.net." }), nil, CheckRefused},
			{"nothing listens", check(host, func(p *rfc2136.Provider) { p.Server = closed }), nil, CheckUnreachable},
		})
	})
}
