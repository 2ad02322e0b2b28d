// Package acmedns gets the relay a trusted certificate for its DDNS
// hostname from an ACME CA (Let's Encrypt) with the DNS-01 challenge, so a
// home line needs neither port 80 nor 443 open: the DNS provider token the
// box already holds for dynamic DNS publishes the challenge's TXT record.
//
// It is a thin layer over github.com/caddyserver/certmagic, which does the
// ACME work (account, order, DNS-01 through a libdns provider, storage,
// renewal ahead of expiry, ARI). This package adds what the box needs
// around it:
//
//   - The relay's certificate source: a Manager serves the trusted
//     certificate once one exists and the fallback (the self-signed
//     certificate the DERP map pins) until then, or again if the trusted
//     one expired. The relay asks on every TLS handshake, so a new or
//     renewed certificate is used from the next handshake on while
//     connected clients keep their sessions.
//   - A first-certificate loop with its own bounded backoff (DefaultRetry,
//     at most every 6 hours after the first hour; longer when the CA says
//     "rate limited, retry after ..."), instead of certmagic's background
//     retries, so the status can say what failed and when the next
//     attempt is, and tests can shorten it. Renewals are certmagic's: its
//     maintenance loop checks every RenewCheckInterval (10 min) whether
//     the certificate is in its renewal window (the last third of its
//     life, or the CA's ARI window) and retries a failed renewal with its
//     own backoff (1, 2, 2, 5, 10 min, ... then every 6 hours; the next
//     maintenance check starts over after 30 days of failures). On top,
//     certmagic throttles new orders to 10 per 10 s per CA and account
//     (certmagic.RateLimitEvents, left at its default). A failed attempt
//     of either kind changes nothing on disk: the stored certificate is
//     replaced only by a new one.
//   - No CA contact while the clock is implausible (boards without a
//     real-time clock boot in 1970).
//   - Plain-words status for the web UI (CertInfo, Status).
package acmedns

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/homederp/homederp/relay"
)

// Config is what a Manager needs.
type Config struct {
	// Hostname is the name to get a certificate for, e.g.
	// "derp.example.com".
	Hostname string
	// CA is "production" or "" (Let's Encrypt), "staging" (Let's
	// Encrypt's staging CA, whose certificates clients do not trust) or
	// the https:// URL of an ACME directory.
	CA string
	// Email is the ACME account's contact address; optional.
	Email string
	// Dir keeps the ACME account and the certificates, e.g.
	// "/perm/homederp/acme". It is created if missing.
	Dir string
	// DNS publishes and removes the challenge's TXT record, e.g. a
	// *cloudflare.Provider or *rfc2136.Provider from ddns.
	DNS certmagic.DNSProvider
	// Fallback is served while there is no valid trusted certificate:
	// the self-signed certificate that the DERP map pins.
	Fallback relay.CertSource

	// Resolvers are the DNS servers, e.g. ["192.168.1.1:53"], that find
	// the hostname's zone and on which the TXT record must appear before
	// the CA is asked to look. Empty means the system's resolvers to find
	// the zone, then the zone's authoritative servers for the check.
	Resolvers []string
	// PropagationDelay is a pause after publishing the TXT record before
	// checking for it; 0 = none.
	PropagationDelay time.Duration
	// PropagationTimeout bounds the wait for the record to appear; 0 =
	// certmagic's 2 minutes.
	PropagationTimeout time.Duration

	// TrustedRoots verify the ACME CA's HTTPS API; nil = the system's.
	// Tests pass the roots of their Pebble.
	TrustedRoots *x509.CertPool
	// Retry are the waits after each failed attempt to get the first
	// certificate; the last repeats. nil = DefaultRetry.
	Retry []time.Duration
	// RenewalWindowRatio is the share of a certificate's lifetime left
	// when renewal starts; 0 = certmagic's 1/3 (30 days for Let's
	// Encrypt's 90-day certificates).
	RenewalWindowRatio float64
	// RenewCheckInterval is how often certmagic checks whether to renew;
	// 0 = certmagic's 10 minutes.
	RenewCheckInterval time.Duration
	// CheckInterval is how often the Manager checks whether the kind of
	// certificate it serves changed on its own (a trusted certificate
	// that expired), to call OnChange; 0 = 1 minute.
	CheckInterval time.Duration

	// Logf logs; nil = quiet.
	Logf func(format string, args ...any)
	// OnChange is called (from its own goroutine) when the served
	// certificate switches between the trusted one and the fallback, so
	// the owner can re-render the DERP map (pin or no pin). It must not
	// call Close.
	OnChange func()
	// Now is the clock used to judge whether the time is plausible
	// enough to talk to the CA; nil = time.Now. certmagic itself always
	// reads time.Now.
	Now func() time.Time
}

// Manager gets, renews and serves the certificate. It implements
// relay.CertSource and relay.CertDescriber. Its methods are safe for
// concurrent use.
type Manager struct {
	cfg   Config
	host  string // lower case
	caURL string
	logf  func(format string, args ...any)

	cache *certmagic.Cache
	store storage
	// magic is the configuration certmagic's maintenance (renewals)
	// uses; first uses the same CA, storage and solver through an issuer
	// that never prompts (see quietIssuer) for the first certificate.
	magic, first *certmagic.Config
	// maint is magic for the cache's maintenance goroutine, which starts
	// before magic exists.
	maint atomic.Pointer[certmagic.Config]

	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	done      chan struct{} // closed when run returns
	changed   chan struct{} // wakes the OnChange notifier

	mu sync.Mutex
	st state
}

// Start prepares a Manager and starts getting the certificate in the
// background. A certificate already in Dir is served at once, before
// Start returns.
func Start(cfg Config) (*Manager, error) {
	if cfg.Hostname == "" {
		return nil, errors.New("acmedns: no hostname")
	}
	if cfg.DNS == nil {
		return nil, errors.New("acmedns: no DNS provider for the DNS-01 challenge")
	}
	if cfg.Fallback == nil {
		return nil, errors.New("acmedns: no fallback certificate")
	}
	if cfg.Dir == "" {
		return nil, errors.New("acmedns: no storage directory")
	}
	caURL, err := DirectoryURL(cfg.CA)
	if err != nil {
		return nil, err
	}
	if cfg.Retry == nil {
		cfg.Retry = DefaultRetry
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{
		cfg:     cfg,
		host:    strings.ToLower(strings.TrimSuffix(cfg.Hostname, ".")),
		caURL:   caURL,
		logf:    cfg.Logf,
		done:    make(chan struct{}),
		changed: make(chan struct{}, 1),
	}
	if m.logf == nil {
		m.logf = func(string, ...any) {}
	}
	logger := zapLogf(m.logf)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			if c := m.maint.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("not ready")
		},
		RenewCheckInterval: cfg.RenewCheckInterval,
		Logger:             logger,
	})
	m.store = newStorage(cfg.Dir)
	newConfig := func(quiet bool) *certmagic.Config {
		c := certmagic.New(m.cache, certmagic.Config{
			RenewalWindowRatio: cfg.RenewalWindowRatio,
			Storage:            m.store,
			// DERP clients do not ask for OCSP, and Let's Encrypt no
			// longer runs OCSP: stapling would only add network calls.
			OCSP:    certmagic.OCSPConfig{DisableStapling: true},
			OnEvent: m.onEvent,
			Logger:  logger,
		})
		iss := certmagic.NewACMEIssuer(c, certmagic.ACMEIssuer{
			CA:     caURL,
			Email:  cfg.Email,
			Agreed: true, // choosing acme-dns in the setup page is the agreement
			DNS01Solver: &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
				DNSProvider: cfg.DNS,
				// 60 s is the shortest TTL Cloudflare accepts on every plan.
				TTL:                60 * time.Second,
				PropagationDelay:   cfg.PropagationDelay,
				PropagationTimeout: cfg.PropagationTimeout,
				Resolvers:          cfg.Resolvers,
				Logger:             logger,
			}},
			DisableHTTPChallenge:    true,
			DisableTLSALPNChallenge: true,
			TrustedRoots:            cfg.TrustedRoots,
			Logger:                  logger,
		})
		if quiet {
			c.Issuers = []certmagic.Issuer{quietIssuer{iss}}
		} else {
			c.Issuers = []certmagic.Issuer{iss}
		}
		return c
	}
	m.magic, m.first = newConfig(false), newConfig(true)
	m.maint.Store(m.magic)
	m.ctx, m.cancel = context.WithCancel(context.Background())

	// A certificate from an earlier run is served at once; this reads
	// only the disk (its "cached_managed_cert" event records it).
	if _, err := m.first.CacheManagedCertificate(m.ctx, m.host); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.setError(fmt.Errorf("loading the stored certificate: %w", err), time.Time{})
	}

	go m.notifier()
	go m.run()
	return m, nil
}

// Close stops getting and renewing certificates. It waits, at most 10
// s, for an ACME exchange in progress to end: once it returns the
// Manager no longer touches Dir (past the 10 s, a late operation can
// still save a certificate the CA has issued, but starts nothing new).
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		deadline := time.Now().Add(10 * time.Second)
		m.cancel()
		m.store.close()
		stopped := make(chan struct{})
		go func() {
			<-m.done
			m.cache.Stop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(time.Until(deadline)):
		}
		if !m.store.wait(deadline) {
			m.logf("acme: an ACME exchange for %s is still ending in the background", m.host)
		}
	})
}
