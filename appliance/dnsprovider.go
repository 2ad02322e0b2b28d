package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/alidns"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/cloudflare"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/ddns/tencentcloud"
	"github.com/libdns/libdns"
)

// dnsProvider is what the updater and the ACME DNS-01 solver both use:
// every provider package's Provider is one.
type dnsProvider interface {
	ddns.Provider
	libdns.RecordAppender
	libdns.RecordDeleter
}

// dnsSetup is what a DNS provider is made from.
type dnsSetup struct {
	d      config.DDNS
	secret string       // the provider's secret as stored (see config.ProviderSecret)
	http   *http.Client // for API providers; nil = apiclient's default
	logf   func(string, ...any)
	zones  ddns.Verifier // for RFC 2136: finds the zone when none is configured
	// retries of a throttled or failing API call; 0 = apiclient's
	// patient default, fit for the updater.
	retries int
}

// newDNSProvider makes the provider d names, with its credential.
func newDNSProvider(s dnsSetup) (dnsProvider, error) {
	o := apiclient.Options{HTTP: s.http, Logf: s.logf, MaxRetries: s.retries}
	switch s.d.Provider {
	case config.ProviderCloudflare:
		return cloudflare.New(s.secret, o), nil
	case config.ProviderTencentCloud:
		k := config.ParseKeyPair(s.secret)
		return tencentcloud.New(k.ID, k.Secret, o), nil
	case config.ProviderAliDNS:
		k := config.ParseKeyPair(s.secret)
		return alidns.New(k.ID, k.Secret, o), nil
	case config.ProviderRFC2136:
		r := s.d.RFC2136
		p := &rfc2136.Provider{Server: r.Server, Zone: r.Zone, KeyName: r.KeyName, KeyAlgorithm: r.KeyAlgorithm, Secret: s.secret, Timeout: 10 * time.Second}
		if ch, ok := s.zones.(*authdns.Checker); ok {
			p.FindZone = ch.FindZone
		}
		return p, nil
	}
	return nil, errors.New("no DNS provider is configured")
}

// checkDNSProvider checks p's credential with calls that change nothing
// (see each provider's Check; for RFC 2136 a signed query).
func checkDNSProvider(ctx context.Context, p dnsProvider, hostname string) error {
	switch p := p.(type) {
	case *rfc2136.Provider:
		return p.CheckKey(ctx, hostname)
	case interface {
		Check(ctx context.Context, hostname string) error
	}:
		return p.Check(ctx, hostname)
	}
	return nil
}

// missingCredential says what to save when provider has no credential
// yet.
func missingCredential(provider string) string {
	switch provider {
	case config.ProviderCloudflare:
		return "No Cloudflare API token is saved yet: create one with the \"Edit zone DNS\" template and save it in the setup page."
	case config.ProviderTencentCloud:
		return "No Tencent Cloud API key is saved yet for DNSPod: create one under 访问管理 (CAM) → API密钥管理 and save its SecretId and SecretKey in the setup page."
	case config.ProviderAliDNS:
		return "No Alibaba Cloud AccessKey is saved yet for AliDNS: create one for a RAM user with AliyunDNSFullAccess and save its ID and secret in the setup page."
	}
	return "No TSIG secret is saved yet for the RFC 2136 key."
}
