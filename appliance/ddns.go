package main

import (
	"context"
	"net/http"
	"net/netip"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/detect"
)

// ddnsService runs the DNS updater for the current configuration and
// secrets, and restarts it when either changes. apply runs on the
// service's loop only; readers see the published view.
type ddnsService struct {
	a    *app
	loop *applyLoop
	// newDetector and newVerifier build the updater's network parts
	// (options.hooks point them at loopback servers in tests).
	newDetector func(config.DDNS) *detect.Detector
	newVerifier func(config.DDNS) ddns.Verifier
	httpClient  *http.Client // DNS provider APIs; nil = apiclient's default

	// Owned by apply.
	last    ddnsSettings
	started bool
	cancel  context.CancelFunc
	done    chan struct{}

	view atomic.Pointer[ddnsView]
}

type ddnsView struct {
	u       *ddns.Updater // nil when not running
	last    ddnsSettings
	problem string // why the updater is not running although configured
}

// ddnsSettings is everything a running updater depends on.
type ddnsSettings struct {
	hostname string
	d        config.DDNS
	secret   string
}

func newDDNSService(a *app) *ddnsService {
	s := &ddnsService{a: a, newDetector: defaultDetector, newVerifier: defaultVerifier, httpClient: a.opts.hooks.httpClient}
	if h := a.opts.hooks; h.detector != nil {
		s.newDetector = h.detector
	}
	if h := a.opts.hooks; h.verifier != nil {
		s.newVerifier = h.verifier
	}
	return s
}

func defaultDetector(d config.DDNS) *detect.Detector {
	det := &detect.Detector{STUN: d.STUNServers, Logf: nil}
	for _, w := range d.Whoami {
		if ap, err := netip.ParseAddrPort(w.Addr); err == nil {
			det.Whoami = append(det.Whoami, detect.WhoamiServer{Addr: ap, TLSName: w.TLSName})
		}
	}
	return det
}

func defaultVerifier(d config.DDNS) ddns.Verifier {
	c := &authdns.Checker{}
	for _, r := range d.Resolvers {
		if ap, err := netip.ParseAddrPort(r); err == nil {
			c.Resolvers = append(c.Resolvers, ap)
		}
	}
	return c
}

// apply starts, restarts or stops the updater for c. Checks run in the
// updater's goroutine; only stopping a running updater waits (briefly)
// for its check to end.
func (s *ddnsService) apply(c config.Config) error {
	want := ddnsSettings{hostname: c.Hostname, d: c.DDNS}
	if c.DDNS.Provider != config.ProviderNone {
		sec, err := s.a.store.Secret(config.ProviderSecret(c.DDNS.Provider))
		if err != nil {
			s.a.logf("ddns: reading the DNS credential: %v", err)
		}
		want.secret = sec
	}
	if s.started && reflect.DeepEqual(want, s.last) {
		return nil
	}
	s.stop()
	s.started, s.last = true, want
	s.view.Store(&ddnsView{last: want})
	if want.d.Provider == config.ProviderNone || want.hostname == "" {
		return nil
	}
	if want.secret == "" {
		s.view.Store(&ddnsView{last: want, problem: missingCredential(want.d.Provider)})
		return nil
	}
	verifier := s.newVerifier(want.d)
	det := s.newDetector(want.d)
	p, err := newDNSProvider(dnsSetup{d: want.d, secret: want.secret, http: s.httpClient, logf: s.a.logf, zones: verifier})
	if err != nil {
		s.view.Store(&ddnsView{last: want, problem: err.Error()})
		return err
	}
	u, err := ddns.New(ddns.Config{
		Hostname:     want.hostname,
		ProviderName: config.ProviderName(want.d.Provider),
		IPv4:         want.d.IPv4,
		IPv6:         want.d.IPv6,
		Provider:     p,
		Detector:     det,
		Prober:       det,
		Verifier:     verifier,
		Interval:     time.Duration(want.d.Interval),
		StateDir:     s.a.opts.stateDir,
		Logf:         s.a.logf,
		// NoIPv4 changed: the map must say "IPv4": "none" (or stop
		// saying it).
		OnChange: func(ddns.Status) { s.a.dmap.changed() },
	})
	if err != nil {
		s.view.Store(&ddnsView{last: want, problem: err.Error()})
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.cancel, s.done = cancel, done
	s.view.Store(&ddnsView{u: u, last: want})
	go func() {
		defer close(done)
		u.Run(ctx)
	}()
	return nil
}

// stop stops a running updater and waits for it, at most 10 s: every
// network call of a check follows the context, so it ends in well under
// a second, but the service must never hang on it.
func (s *ddnsService) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.a.logf("ddns: the previous updater is slow to stop; starting the new one anyway")
	}
	s.cancel, s.done = nil, nil
	if v := s.view.Load(); v != nil {
		s.view.Store(&ddnsView{last: v.last})
	}
}

// close stops the updater; the loop must have stopped.
func (s *ddnsService) close() { s.stop() }

// Status is what the web UI shows about dynamic DNS.
func (s *ddnsService) Status() ddns.Status {
	v := s.view.Load()
	if v == nil {
		return ddns.Status{}
	}
	if v.u != nil {
		return v.u.Status()
	}
	return ddns.Status{Enabled: v.last.d.Provider != config.ProviderNone, Provider: config.ProviderName(v.last.d.Provider), Hostname: v.last.hostname, LastError: v.problem}
}

// checkNow asks the running updater for an immediate check.
func (s *ddnsService) checkNow() {
	if v := s.view.Load(); v != nil && v.u != nil {
		v.u.CheckNow()
	}
}

// dnsSetup is what this service makes d's provider from.
func (s *ddnsService) dnsSetup(d config.DDNS, secret string) dnsSetup {
	return dnsSetup{d: d, secret: secret, http: s.httpClient, logf: s.a.logf, zones: s.newVerifier(d)}
}

// checkCredential checks a DNS credential before it is saved, with calls
// that change nothing: a Cloudflare token with /user/tokens/verify and its
// zone access, a DNSPod or AliDNS key by reading the zone and the name's
// records, a TSIG key with a signed query to the server. A failure is a
// *ddns.CheckError, which says whether the provider was unreachable, does
// not accept the credential, or refuses what it is needed for.
func (s *ddnsService) checkCredential(ctx context.Context, c config.Config, secret string) error {
	if c.DDNS.Provider == config.ProviderNone {
		return nil
	}
	setup := s.dnsSetup(c.DDNS, secret)
	setup.retries = 1 // a person waits for the answer
	p, err := newDNSProvider(setup)
	if err != nil {
		return err
	}
	return ddns.ClassifyCheck(checkDNSProvider(ctx, p, c.Hostname))
}
