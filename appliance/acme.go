package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/acmedns"
)

// acmeService runs the ACME DNS-01 manager of certificate mode acme-dns
// on its own loop: starting one loads the stored certificate and account,
// and stopping one waits (up to 10 s) for an ACME exchange to end, which
// the relay's apply must not wait for. The relay serves whatever manager
// is current through acmeCert, and the self-signed certificate until
// there is one.
type acmeService struct {
	a    *app
	loop *applyLoop

	// Owned by apply.
	settings acmeSettings
	m        *acmedns.Manager

	view atomic.Pointer[acmeView]
}

// acmeView is what the relay's certificate source sees.
type acmeView struct {
	m    *acmedns.Manager // nil: none runs
	host string           // the hostname m is for
	err  string           // why no manager runs although the mode is acme-dns
}

// acmeSettings are everything a manager depends on: a change of any
// makes a new manager (which serves the stored certificate at once). Zero
// unless the certificate mode is acme-dns.
type acmeSettings struct {
	hostname  string
	ca        string
	caRoots   string // PEM: config.Cert.ACMECARoots
	email     string
	provider  string
	rfc2136   config.RFC2136
	resolvers string // joined, to keep the struct comparable
	secret    string
	secretErr string
}

func (s *acmeService) settingsFor(c config.Config) acmeSettings {
	if c.Cert.Mode != config.CertACMEDNS {
		return acmeSettings{}
	}
	st := acmeSettings{
		hostname:  hostname(c),
		ca:        c.Cert.ACMECA,
		caRoots:   c.Cert.ACMECARoots,
		email:     c.Cert.ACMEEmail,
		provider:  c.DDNS.Provider,
		resolvers: strings.Join(c.DDNS.Resolvers, " "),
	}
	if c.DDNS.Provider == config.ProviderRFC2136 {
		st.rfc2136 = c.DDNS.RFC2136
	}
	if c.DDNS.Provider != config.ProviderNone {
		sec, err := s.a.store.Secret(config.ProviderSecret(c.DDNS.Provider))
		st.secret = sec
		if err != nil {
			st.secretErr = err.Error()
		}
	}
	return st
}

// acmeDir keeps the ACME account and certificates.
func (s *acmeService) acmeDir() string { return filepath.Join(s.a.opts.stateDir, "acme") }

func (s *acmeService) apply(c config.Config) error {
	want := s.settingsFor(c)
	if want == s.settings && (s.m != nil || want == acmeSettings{}) {
		return nil
	}
	defer s.a.dmap.changed() // the map's pin may change
	s.stop()
	s.settings = want
	if want == (acmeSettings{}) {
		s.view.Store(nil)
		return nil
	}
	m, err := s.startManager(c, want)
	if err != nil {
		s.view.Store(&acmeView{host: want.hostname, err: err.Error()})
		return fmt.Errorf("ACME DNS-01: %w", err)
	}
	s.m = m
	s.view.Store(&acmeView{m: m, host: want.hostname})
	return nil
}

// startManager starts a manager that serves the self-signed certificate
// until the CA's is there and publishes the DNS-01 challenge with the DDNS
// provider and credential.
func (s *acmeService) startManager(c config.Config, st acmeSettings) (*acmedns.Manager, error) {
	if st.secretErr != "" {
		return nil, errors.New(st.secretErr)
	}
	if st.provider == config.ProviderNone {
		return nil, errors.New("no DNS provider is configured to answer the DNS-01 challenge")
	}
	if st.secret == "" {
		return nil, fmt.Errorf("%s (The DDNS credential also answers the DNS-01 challenge.)", missingCredential(st.provider))
	}
	dns, err := newDNSProvider(s.a.ddns.dnsSetup(c.DDNS, st.secret))
	if err != nil {
		return nil, err
	}
	fallback, err := s.a.selfSigned(st.hostname)
	if err != nil {
		return nil, err
	}
	roots, err := caRootPool(st.caRoots)
	if err != nil {
		return nil, err
	}
	cfg := acmedns.Config{
		Hostname:  st.hostname,
		CA:        st.ca,
		Email:     st.email,
		Dir:       s.acmeDir(),
		DNS:       dns,
		Fallback:  fallback,
		Resolvers: c.DDNS.Resolvers,
		// nil (no roots configured): the system's.
		TrustedRoots: roots,
		Logf:         s.a.logf,
		// The trusted certificate started or stopped serving: the
		// map's pin changes.
		OnChange: s.a.dmap.changed,
	}
	if s.a.opts.hooks.acme != nil {
		s.a.opts.hooks.acme(&cfg)
	}
	m, err := acmedns.Start(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting: %w", err)
	}
	return m, nil
}

// caRootPool is the pool of a private ACME CA's roots (PEM), or nil for
// the system's roots when there are none.
func caRootPool(pemRoots string) (*x509.CertPool, error) {
	if pemRoots == "" {
		return nil, nil
	}
	certs, err := config.ParseACMECARoots(pemRoots)
	if err != nil {
		return nil, fmt.Errorf("the ACME CA's root certificates: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// stop ends the running manager, if any.
func (s *acmeService) stop() {
	if s.m != nil {
		s.view.Store(nil)
		s.m.Close()
		s.m = nil
	}
}

// close stops the manager; the loop must have stopped.
func (s *acmeService) close() { s.stop() }

// acmeCert is the relay's certificate source in mode acme-dns: the
// current manager (which itself serves the self-signed certificate until
// the CA's arrives), or the self-signed certificate while none runs for
// the relay's hostname.
type acmeCert struct {
	s        *acmeService
	host     string
	fallback relay.StaticCert
}

func (c acmeCert) manager() (*acmedns.Manager, string) {
	v := c.s.view.Load()
	switch {
	case v == nil:
		return nil, "starting"
	case v.host != c.host:
		return nil, "starting for " + c.host
	case v.m == nil:
		return nil, v.err
	}
	return v.m, ""
}

func (c acmeCert) GetCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m, _ := c.manager(); m != nil {
		return m.GetCertificate(hi)
	}
	return c.fallback.GetCertificate(hi)
}

func (c acmeCert) CertInfo() relay.CertInfo {
	m, why := c.manager()
	if m != nil {
		return m.CertInfo()
	}
	return relay.CertInfo{Mode: string(config.CertACMEDNS), Error: fmt.Sprintf("ACME DNS-01: %s; serving the self-signed certificate meanwhile (the DERP map pins it)", why)}
}
