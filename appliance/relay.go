package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/acmedns"
)

// manualCertPoll is how often the manual certificate files are checked
// for changes.
const manualCertPoll = 5 * time.Second

// relayService runs the relay for the current configuration. A new
// hostname or port needs new listeners and so a new relay; everything
// else (certificate mode, verify-clients, mesh, rate limits) is applied
// to the running relay, mostly without disconnecting anyone (see
// relay.Apply for the exceptions).
type relayService struct {
	a *app

	// acmeSource supplies the certificate for cert mode acme-dns: an
	// acmedns.Manager (startACME) serving fallback, the self-signed
	// certificate, until the CA's is there; stop ends it. If it fails to
	// start, the mode serves the self-signed certificate and says why.
	acmeSource func(c config.Config, fallback relay.CertSource) (src relay.CertSource, stop context.CancelFunc, err error)
	// acmeTweak adjusts the ACME manager's configuration; tests point it
	// at their CA (trusted roots, faster retries).
	acmeTweak func(*acmedns.Config)

	mu         sync.Mutex
	srv        *relay.Server
	listen     listenSettings
	certs      certSettings
	stopCerts  context.CancelFunc // stops the manual certificate poller
	meshErr    string             // a mesh problem the relay cannot see (a bad mesh key)
	certSrcErr string             // why the wanted certificate source could not be set up
	startErr   string             // why the relay is not running, after a failed start
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
	acmeCA   string
	acme     acmeSettings // the rest of what mode acme-dns depends on
}

func newRelayService(a *app) *relayService {
	rs := &relayService{a: a}
	rs.acmeSource = rs.startACME
	return rs
}

func (rs *relayService) certDir() string { return filepath.Join(rs.a.opts.stateDir, "certs") }

func (rs *relayService) apply(c config.Config) error {
	listen := listenSettings{hostname(c), c.Relay.DERPPort, c.Relay.STUNPort}
	certs := certSettings{hostname(c), c.Cert.Mode, c.Cert.ACMECA, rs.acmeSettings(c)}
	policy, meshErr := rs.policy(c)

	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.meshErr = meshErr
	if meshErr != "" {
		rs.a.logf("relay: %s", meshErr)
	}
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
	var stunAddrs []string
	hosts := rs.a.listenHosts()
	for _, h := range hosts {
		stunAddrs = append(stunAddrs, net.JoinHostPort(h, strconv.Itoa(listen.stunPort)))
	}
	if rs.srv != nil {
		rs.srv.Close()
		rs.srv = nil
	}
	srv, err := rs.start(listen, hosts, stunAddrs, src, policy)
	if err != nil {
		stop()
		// The saved configuration stands (the map follows it); say
		// plainly that the relay is down and why, until a new
		// configuration starts it.
		rs.startErr = err.Error()
		return err
	}
	rs.startErr = ""
	rs.replaceCertPoller(stop)
	rs.srv, rs.listen, rs.certs = srv, listen, certs
	return nil
}

func (rs *relayService) start(listen listenSettings, hosts, stunAddrs []string, src relay.CertSource, policy relay.Policy) (*relay.Server, error) {
	srv, err := relay.New(relay.Config{
		Hostname:  listen.hostname,
		DERPAddr:  net.JoinHostPort(hosts[0], strconv.Itoa(listen.derpPort)),
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
		return nil, err
	}
	go func() {
		if err, ok := <-srv.Err(); ok {
			rs.a.errc <- err
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
	selfSigned, err := relay.SelfSigned(rs.certDir(), host, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	noop := func() {}
	switch c.Cert.Mode {
	case config.CertManual:
		m := relay.NewManualCerts(rs.certDir(), host, selfSigned, rs.a.logf, nil)
		ctx, cancel := context.WithCancel(context.Background())
		go m.Run(ctx, manualCertPoll)
		return m, cancel, nil
	case config.CertACMEDNS:
		src, stop, err := rs.acmeSource(c, selfSigned)
		if err == nil {
			return src, stop, nil
		}
		return fallbackCert{selfSigned, relay.CertInfo{Mode: string(c.Cert.Mode), Error: fmt.Sprintf("ACME DNS-01: %v; serving the self-signed certificate meanwhile (the DERP map pins it)", err)}}, noop, nil
	default:
		return selfSigned, noop, nil
	}
}

// fallbackCert serves the self-signed certificate in place of the one
// the configuration asks for, and says why.
type fallbackCert struct {
	relay.StaticCert
	info relay.CertInfo
}

func (f fallbackCert) GetCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.StaticCert.GetCertificate(hi)
}

func (f fallbackCert) CertInfo() relay.CertInfo { return f.info }

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

// mapOptions says how the emitted map must treat the current certificate.
func (rs *relayService) mapOptions() derpmap.Options {
	rs.mu.Lock()
	srv := rs.srv
	rs.mu.Unlock()
	var o derpmap.Options
	if srv != nil {
		o.PinnedCert = srv.PinnedCert()
	}
	return o
}

// status is the relay's status for the web UI.
func (rs *relayService) status() relay.Status {
	rs.mu.Lock()
	srv, meshErr, startErr := rs.srv, rs.meshErr, rs.startErr
	rs.mu.Unlock()
	if srv == nil {
		return relay.Status{Error: "the relay is not running: " + cmp.Or(startErr, "not started yet")}
	}
	st := srv.Status()
	if meshErr != "" {
		st.MeshError = meshErr
	}
	return st
}

// metricsHandler serves the running relay's Prometheus metrics, for the
// web UI to mount on the LAN.
func (rs *relayService) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		srv := rs.srv
		rs.mu.Unlock()
		if srv == nil {
			http.Error(w, "the relay is not running", http.StatusServiceUnavailable)
			return
		}
		srv.MetricsHandler().ServeHTTP(w, r)
	})
}

func (rs *relayService) close() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.srv != nil {
		rs.srv.Close()
		rs.srv = nil
	}
	rs.replaceCertPoller(nil)
}
