package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/homederp/homederp/appliance/config"
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
		sec, err := rs.a.store.Secret(config.ProviderSecret(c.DDNS.Provider))
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
	if s.provider == config.ProviderNone {
		return nil, nil, errors.New("no DNS provider is configured to answer the DNS-01 challenge")
	}
	if s.secret == "" {
		return nil, nil, fmt.Errorf("%s (The DDNS credential also answers the DNS-01 challenge.)", missingCredential(s.provider))
	}
	setup := dnsSetup{d: c.DDNS, secret: s.secret, logf: rs.a.logf}
	if rs.a.ddns != nil {
		setup = rs.a.ddns.dnsSetup(c.DDNS, s.secret)
	}
	dns, err := newDNSProvider(setup)
	if err != nil {
		return nil, nil, err
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
