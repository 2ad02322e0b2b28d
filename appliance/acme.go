package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/caddyserver/certmagic"
	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/cloudflare"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/acmedns"
)

// acmeSettings are the configuration and the DNS credential that an ACME
// DNS-01 manager depends on beyond certSettings: a change of any makes a
// new manager (which serves the stored certificate at once). Zero unless
// the certificate mode is acme-dns, so that other modes do not restart
// their source when DDNS settings change.
type acmeSettings struct {
	email     string
	provider  string
	rfc2136   config.RFC2136
	resolvers string // joined, to keep the struct comparable
	secret    string
	secretErr string
}

func (rs *relayService) acmeSettings(c config.Config) acmeSettings {
	if c.Cert.Mode != config.CertACMEDNS {
		return acmeSettings{}
	}
	s := acmeSettings{
		email:     c.Cert.ACMEEmail,
		provider:  c.DDNS.Provider,
		resolvers: strings.Join(c.DDNS.Resolvers, " "),
	}
	if c.DDNS.Provider == config.ProviderRFC2136 {
		s.rfc2136 = c.DDNS.RFC2136
	}
	if c.DDNS.Provider != config.ProviderNone {
		sec, err := rs.a.store.Secret(secretName(c.DDNS.Provider))
		s.secret = sec
		if err != nil {
			s.secretErr = err.Error()
		}
	}
	return s
}

// acmeDir keeps the ACME account and certificates.
func (rs *relayService) acmeDir() string { return filepath.Join(rs.a.opts.stateDir, "acme") }

// startACME is the certificate source of mode acme-dns: an acmedns
// Manager that serves fallback (the self-signed certificate) until the
// CA's certificate is there. It publishes the DNS-01 challenge with the
// DDNS provider and credential. When the map's pin must change (the
// trusted certificate starts or stops serving) it rewrites derpmap.json.
func (rs *relayService) startACME(c config.Config, fallback relay.CertSource) (relay.CertSource, context.CancelFunc, error) {
	s := rs.acmeSettings(c)
	if s.secretErr != "" {
		return nil, nil, errors.New(s.secretErr)
	}
	var dns certmagic.DNSProvider
	switch s.provider {
	case config.ProviderCloudflare:
		if s.secret == "" {
			return nil, nil, errors.New("no Cloudflare API token is saved yet (the DDNS token also answers the DNS-01 challenge)")
		}
		var hc *http.Client
		if rs.a.ddns != nil {
			hc = rs.a.ddns.httpClient
		}
		dns = cloudflare.New(s.secret, apiclient.Options{HTTP: hc, Logf: rs.a.logf})
	case config.ProviderRFC2136:
		if s.secret == "" {
			return nil, nil, errors.New("no TSIG secret is saved yet for the RFC 2136 key")
		}
		r := s.rfc2136
		p := &rfc2136.Provider{Server: r.Server, Zone: r.Zone, KeyName: r.KeyName, KeyAlgorithm: r.KeyAlgorithm, Secret: s.secret}
		if rs.a.ddns != nil {
			if ch, ok := rs.a.ddns.newVerifier(c.DDNS).(*authdns.Checker); ok {
				p.FindZone = ch.FindZone
			}
		}
		dns = p
	default:
		return nil, nil, errors.New("no DNS provider is configured to answer the DNS-01 challenge")
	}
	cfg := acmedns.Config{
		Hostname:  hostname(c),
		CA:        c.Cert.ACMECA,
		Email:     s.email,
		Dir:       rs.acmeDir(),
		DNS:       dns,
		Fallback:  fallback,
		Resolvers: c.DDNS.Resolvers,
		Logf:      rs.a.logf,
		OnChange: func() {
			if err := rs.a.writeDERPMap(); err != nil {
				rs.a.logf("%v", err)
			}
		},
	}
	if rs.acmeTweak != nil {
		rs.acmeTweak(&cfg)
	}
	m, err := acmedns.Start(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("starting: %w", err)
	}
	return m, m.Close, nil
}
