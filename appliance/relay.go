package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/relay"
)

const (
	// manualCertPoll is how often the manual certificate files are
	// checked for changes.
	manualCertPoll = 5 * time.Second
	// relayRetry is how soon a relay that could not start (a port
	// another program holds) tries the same configuration again.
	relayRetry = 15 * time.Second
)

// relayService runs the relay for the current configuration. A new
// hostname or port needs new listeners and so a new relay; everything
// else (certificate mode, verify-clients, mesh, rate limits) is applied
// to the running relay, mostly without disconnecting anyone (see
// relay.Apply for the exceptions).
//
// apply runs on the service's loop only; readers (status, metrics, the
// DERP map) see the published view and never wait for an apply.
type relayService struct {
	a    *app
	loop *applyLoop

	// Owned by apply.
	srv       *relay.Server
	listen    listenSettings
	certs     certSettings
	stopCerts context.CancelFunc // stops the manual certificate poller

	view atomic.Pointer[relayView]
}

// relayView is what readers see of the relay.
type relayView struct {
	srv      *relay.Server // nil while no relay runs
	meshErr  string        // a mesh problem the relay cannot see (a bad mesh key)
	startErr string        // why no relay runs, after a failed start
}

// listenSettings are the config fields that need new listeners.
type listenSettings struct {
	hostname           string
	derpPort, stunPort int
}

// certSettings are the config fields that choose the certificate source.
type certSettings struct {
	hostname string
	mode     config.CertMode
}

func (rs *relayService) certDir() string { return filepath.Join(rs.a.opts.stateDir, "certs") }

func (rs *relayService) apply(c config.Config) (err error) {
	// The map follows every apply, successful or not: it shows the
	// saved configuration and the certificate now served.
	defer rs.a.dmap.changed()
	listen := listenSettings{hostname(c), c.Relay.DERPPort, c.Relay.STUNPort}
	certs := certSettings{hostname(c), c.Cert.Mode}
	policy, meshErr := rs.policy(c)
	if meshErr != "" {
		rs.a.logf("relay: %s", meshErr)
	}
	defer func() {
		v := &relayView{srv: rs.srv, meshErr: meshErr}
		if rs.srv == nil && err != nil {
			v.startErr = err.Error()
		}
		rs.view.Store(v)
	}()

	if rs.srv != nil && listen == rs.listen {
		if certs != rs.certs {
			src, stop, err := rs.certSource(c)
			if err != nil {
				return err
			}
			if err := rs.srv.SetCertSource(src); err != nil {
				stop()
				return err
			}
			rs.replaceCertPoller(stop)
			rs.certs = certs
		}
		return rs.srv.Apply(policy)
	}

	src, stop, err := rs.certSource(c)
	if err != nil {
		return err
	}
	if rs.srv != nil {
		// Readers stop seeing the old relay before it closes.
		rs.view.Store(&relayView{meshErr: meshErr, startErr: "restarting for new listeners"})
		rs.srv.Close()
		rs.srv = nil
	}
	srv, err := rs.start(listen, src, policy)
	if err != nil {
		stop()
		// The saved configuration stands (the map follows it); the
		// status says plainly that the relay is down and why, and
		// the loop tries again (the port may be freed).
		return err
	}
	rs.replaceCertPoller(stop)
	rs.srv, rs.listen, rs.certs = srv, listen, certs
	return nil
}

func (rs *relayService) start(listen listenSettings, src relay.CertSource, policy relay.Policy) (*relay.Server, error) {
	var derpAddrs, stunAddrs []string
	for _, h := range rs.a.listenHosts() {
		derpAddrs = append(derpAddrs, net.JoinHostPort(h, strconv.Itoa(listen.derpPort)))
		stunAddrs = append(stunAddrs, net.JoinHostPort(h, strconv.Itoa(listen.stunPort)))
	}
	srv, err := relay.New(relay.Config{
		Hostname:  listen.hostname,
		DERPAddrs: derpAddrs,
		STUNAddrs: stunAddrs,
		KeyPath:   filepath.Join(rs.a.opts.stateDir, "derper.key"),
		Certs:     src,
		DERPMap:   rs.a.derpMapJSON,
		Policy:    policy,
	}, rs.a.logf)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return nil, err
	}
	go func() {
		// Err is closed when srv closes, which ends this goroutine
		// with the relay.
		if err, ok := <-srv.Err(); ok {
			select {
			case rs.a.errc <- err:
			default:
			}
		}
	}()
	return srv, nil
}

func (rs *relayService) replaceCertPoller(stop context.CancelFunc) {
	if rs.stopCerts != nil {
		rs.stopCerts()
	}
	rs.stopCerts = stop
}

// certSource builds the certificate source for c's mode. stop ends
// whatever the source runs in the background.
func (rs *relayService) certSource(c config.Config) (src relay.CertSource, stop context.CancelFunc, err error) {
	host := hostname(c)
	selfSigned, err := rs.a.selfSigned(host)
	if err != nil {
		return nil, nil, err
	}
	noop := func() {}
	switch c.Cert.Mode {
	case config.CertManual:
		m := relay.NewManualCerts(rs.certDir(), host, selfSigned, rs.a.logf, nil)
		ctx, cancel := context.WithCancel(context.Background())
		go m.Run(ctx, manualCertPoll)
		return m, cancel, nil
	case config.CertACMEDNS:
		return acmeCert{rs.a.acme, host, selfSigned}, noop, nil
	default:
		return selfSigned, noop, nil
	}
}

// selfSigned is the self-signed certificate for host, made on first use.
// The relay and the ACME manager (its fallback) both ask for it, from
// their own loops; one at a time, so that they never make two different
// certificates for one name (the map pins one of them).
func (a *app) selfSigned(host string) (relay.StaticCert, error) {
	a.selfSignedMu.Lock()
	defer a.selfSignedMu.Unlock()
	ss, err := relay.SelfSigned(filepath.Join(a.opts.stateDir, "certs"), host, time.Now(), a.logf)
	if err != nil {
		return relay.StaticCert{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	return ss, nil
}

// policy translates the configuration (and the mesh key secret) into the
// relay's policy. A problem with the mesh key turns the mesh off and is
// returned as meshErr, so the rest of the configuration still applies.
func (rs *relayService) policy(c config.Config) (p relay.Policy, meshErr string) {
	r := c.Relay
	switch {
	case r.VerifyClients:
		p.Verify = relay.Verify{Mode: relay.VerifyTailscaled, TailscaledSocket: r.TailscaledSocket}
	case r.VerifyClientURL != "":
		p.Verify = relay.Verify{Mode: relay.VerifyURL, URL: r.VerifyClientURL, URLFailOpen: r.VerifyClientURLFailOpen}
	default:
		p.Verify = relay.Verify{Mode: relay.VerifyOff}
	}
	p.ClientRate = relay.RateLimit{BytesPerSec: r.PerClientBytesPerSec, BurstBytes: r.PerClientBurstBytes}
	p.AcceptRate = relay.AcceptLimit{PerSec: r.AcceptConnPerSec, Burst: r.AcceptConnBurst}
	if c.ReverseProxy.Enabled {
		p.TrustedProxies = c.ReverseProxy.TrustedPrefixes()
	}

	if len(r.MeshWith) == 0 {
		return p, ""
	}
	meshKey, err := rs.a.store.Secret(config.SecretMeshKey)
	switch {
	case err != nil:
		return p, fmt.Sprintf("mesh is off: %v", err)
	case meshKey == "":
		return p, "mesh is off: mesh peers are listed but no mesh key is set"
	}
	p.MeshKey = meshKey
	if err := (relay.Policy{MeshKey: meshKey}).Validate(); err != nil {
		return relay.Policy{Verify: p.Verify, ClientRate: p.ClientRate, AcceptRate: p.AcceptRate, TrustedProxies: p.TrustedProxies}, fmt.Sprintf("mesh is off: %v", err)
	}
	var bad []string
	for _, m := range r.MeshWith {
		peer, err := relay.ParseMeshPeer(m)
		if err == nil {
			host, _, _ := strings.Cut(m, "/")
			peer.CertName = r.MeshPins[host]
			err = (relay.Policy{MeshWith: []relay.MeshPeer{peer}}).Validate()
		}
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		p.MeshWith = append(p.MeshWith, peer)
	}
	if len(bad) > 0 {
		meshErr = "mesh peers left out: " + strings.Join(bad, "; ")
	}
	return p, meshErr
}

// current is the relay readers see, or nil.
func (rs *relayService) current() *relayView {
	if v := rs.view.Load(); v != nil {
		return v
	}
	return &relayView{startErr: "not started yet"}
}

// mapOptions says how the emitted map must treat the current certificate.
func (rs *relayService) mapOptions() derpmap.Options {
	var o derpmap.Options
	if srv := rs.current().srv; srv != nil {
		o.PinnedCert = srv.PinnedCert()
	}
	return o
}

// status is the relay's status for the web UI.
func (rs *relayService) status() relay.Status {
	v := rs.current()
	if v.srv == nil {
		return relay.Status{Error: "the relay is not running: " + cmp.Or(v.startErr, "not started yet")}
	}
	st := v.srv.Status()
	if v.meshErr != "" {
		st.MeshError = v.meshErr
	}
	return st
}

// metricsHandler serves the running relay's Prometheus metrics, for the
// web UI to mount on the LAN.
func (rs *relayService) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv := rs.current().srv
		if srv == nil {
			http.Error(w, "the relay is not running", http.StatusServiceUnavailable)
			return
		}
		srv.MetricsHandler().ServeHTTP(w, r)
	})
}

// awaitApply waits at most until ctx ends for the relay to apply
// configuration gen and says what it did: nil when it runs with it.
func (rs *relayService) awaitApply(ctx context.Context, gen uint64) error {
	st, ok := rs.loop.wait(ctx, gen)
	switch {
	case !ok:
		return errors.New("the relay is still applying the configuration")
	case st.Err != nil:
		return st.Err
	}
	return nil
}

// close stops the relay; its loop must have stopped.
func (rs *relayService) close() {
	rs.view.Store(&relayView{startErr: "stopped"})
	if rs.srv != nil {
		rs.srv.Close()
		rs.srv = nil
	}
	rs.replaceCertPoller(nil)
}
