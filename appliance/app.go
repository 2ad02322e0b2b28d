package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/homederp/homederp/relay/acmedns"
	"github.com/homederp/homederp/webui"
	"tailscale.com/types/logger"
)

type options struct {
	dev                bool
	stateDir           string
	derpPort, stunPort int            // -dev defaults for a new configuration
	webuiAddr          string         // -dev: the web UI's loopback address, e.g. "127.0.0.1:8080"
	passwordFile       string         // the web UI password, instead of gokrazy's; "" = gokrazy's
	logs               *webui.LogRing // the recent log lines the web UI shows; nil for none
	hooks              hooks
	// waitClock, if set, blocks until the system clock is set: the box
	// booted without one (see clock.go).
	waitClock func()
}

// hooks point the services' network parts at test servers; nil fields
// mean the real thing.
type hooks struct {
	detector   func(config.DDNS) *detect.Detector // ddns address detection (and probes)
	verifier   func(config.DDNS) ddns.Verifier    // ddns authoritative checks (and RFC 2136 zone lookup)
	httpClient *http.Client                       // the Cloudflare API
	acme       func(*acmedns.Config)              // the ACME manager's configuration (trusted roots, retries)
}

// app wires the services to the config store. Each service follows the
// store on its own apply loop (loop.go); start waits for their first
// applies so that a -dev box prints a running relay.
type app struct {
	opts      options
	logf      logger.Logf
	store     *config.Store
	relay     *relayService
	acme      *acmeService
	ddns      *ddnsService
	dmap      *mapWriter
	peerRelay *peerRelayService
	portmap   *portmapService
	traffic   *trafficService
	webui     *webuiService
	errc      chan error // a service that stopped on its own
	closed    chan struct{}

	selfSignedMu sync.Mutex  // see selfSigned
	clockPending atomic.Bool // DDNS waits for the clock (see clock.go)
}

// startTimeout bounds start's wait for the first applies. Past it the
// box runs on and the status says which service is still applying.
const startTimeout = 30 * time.Second

func start(opts options, logf logger.Logf) (*app, error) {
	store, err := config.Open(opts.stateDir)
	if err != nil {
		return nil, err
	}
	if err := store.LoadError(); err != nil {
		logf("CONFIG PROBLEM: %v", err)
	}
	if opts.dev && !fileExists(filepath.Join(opts.stateDir, config.FileName)) {
		c := config.Default()
		c.Hostname = "localhost"
		if opts.derpPort != 0 {
			c.Relay.DERPPort = opts.derpPort
		}
		if opts.stunPort != 0 {
			c.Relay.STUNPort = opts.stunPort
		}
		if err := store.Save(c); err != nil {
			return nil, fmt.Errorf("writing the dev configuration: %w", err)
		}
	}

	a := &app{opts: opts, logf: logf, store: store, errc: make(chan error, 4), closed: make(chan struct{})}
	a.dmap = &mapWriter{a: a}
	a.ddns = newDDNSService(a)
	a.acme = &acmeService{a: a}
	a.relay = &relayService{a: a}
	a.portmap = newPortmapService(a)
	a.waitForClockIfNeeded(store.Config())
	// The loops start once every service exists: they read each other's
	// published state (the map writer the relay's pin, the relay the
	// ACME manager, the port mapper ddns's address).
	a.dmap.loop = startKickedLoop("derpmap", store, logf, mapRetry, a.dmap.apply)
	a.ddns.loop = startApplyLoop("ddns", store, logf, 0, func(c config.Config) error { return a.ddns.apply(a.clockless(c)) })
	a.acme.loop = startApplyLoop("acme", store, logf, 0, a.acme.apply)
	a.relay.loop = startApplyLoop("relay", store, logf, relayRetry, a.relay.apply)
	a.portmap.loop = startApplyLoop("portmap", store, logf, 0, a.portmap.apply)
	a.peerRelay = newPeerRelayService(a)
	a.traffic = startTraffic(a.relay.status)

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	gen := store.Generation()
	for _, s := range a.services() {
		if st, ok := s.loop.wait(ctx, gen); !ok {
			logf("%s: still applying the configuration after %v", s.name, startTimeout)
		} else if st.Err != nil && s.name == "relay" {
			// The box runs on without a relay (the web UI can fix
			// the setting that fails); the status says why.
			logf("RELAY PROBLEM: %v", st.Err)
		}
	}
	if err := a.startWebUI(); err != nil {
		a.close()
		return nil, fmt.Errorf("starting the web UI: %w", err)
	}
	if a.clockPending.Load() {
		go a.clockArrives()
	}
	return a, nil
}

// service is one apply loop, named for status and the log.
type service struct {
	name string
	loop *applyLoop
}

// services lists the apply loops, the relay first.
func (a *app) services() []service {
	return []service{
		{"relay", a.relay.loop},
		{"acme", a.acme.loop},
		{"ddns", a.ddns.loop},
		{"portmap", a.portmap.loop},
		{"derpmap", a.dmap.loop},
	}
}

// applies is what each service last did with the configuration, for the
// status page.
func (a *app) applies() []webui.ServiceApply {
	saved := a.store.Generation()
	var out []webui.ServiceApply
	for _, s := range a.services() {
		st := s.loop.state()
		sa := webui.ServiceApply{Service: s.name, Generation: st.Gen, Saved: saved, At: st.At, Took: st.Took}
		if st.Err != nil {
			sa.Error = st.Err.Error()
		}
		out = append(out, sa)
	}
	return out
}

// settled waits until every service has applied generation gen (or a
// later one), at most until ctx ends.
func (a *app) settled(ctx context.Context, gen uint64) error {
	for _, s := range a.services() {
		if _, ok := s.loop.wait(ctx, gen); !ok {
			return fmt.Errorf("%s has not applied configuration %d", s.name, gen)
		}
	}
	return nil
}

// close stops the web UI, then the services' loops, then the services.
// It never waits on the network for long: each service bounds its own
// shutdown.
func (a *app) close() {
	select {
	case <-a.closed:
		return
	default:
		close(a.closed)
	}
	a.webui.close()
	for _, s := range a.services() {
		s.loop.close()
	}
	a.peerRelay.close()
	a.traffic.close()
	a.portmap.close()
	a.ddns.close()
	a.relay.close()
	a.acme.close()
}

// hostname is the name the relay serves: the configured one, or before
// setup a placeholder so the box still answers STUN and TLS on the LAN.
func hostname(c config.Config) string {
	if c.Hostname != "" {
		return c.Hostname
	}
	return "homederp"
}

// listenHosts are the addresses the public services bind: loopback (both
// families, as the box binds both) in -dev, every address otherwise.
func (a *app) listenHosts() []string {
	if a.opts.dev {
		return []string{"127.0.0.1", "::1"}
	}
	return []string{""}
}

func (a *app) summary() string {
	c := a.store.Config()
	var b strings.Builder
	fmt.Fprintf(&b, "\nhomederp is running in dev mode (loopback only).\n\n")
	port := strconv.Itoa(c.Relay.DERPPort)
	var derp, stun []string
	for _, h := range a.listenHosts() {
		derp = append(derp, "tcp "+net.JoinHostPort(h, port))
		stun = append(stun, "udp "+net.JoinHostPort(h, strconv.Itoa(c.Relay.STUNPort)))
	}
	fmt.Fprintf(&b, "  DERP:      https://%s/derp  (TLS, self-signed certificate pinned in the map)\n", net.JoinHostPort(hostname(c), port))
	fmt.Fprintf(&b, "             on %s\n", strings.Join(derp, ", "))
	if st := a.relay.loop.state(); st.Err != nil {
		fmt.Fprintf(&b, "             NOT RUNNING: %v\n", st.Err)
	}
	fmt.Fprintf(&b, "  STUN:      %s\n", strings.Join(stun, ", "))
	fmt.Fprintf(&b, "  DERP map:  %s\n", a.dmap.path())
	fmt.Fprintf(&b, "             (also served at https://%s/derpmap.json)\n", net.JoinHostPort(hostname(c), port))
	fmt.Fprintf(&b, "  web UI:    %s  (user gokrazy, password %s)\n", a.webui.url(), a.webui.password)
	fmt.Fprintf(&b, "  state:     %s\n\n", a.opts.stateDir)
	fmt.Fprintf(&b, "Paste the map's region into a Tailscale policy file's \"derpMap\" or a headscale\n")
	fmt.Fprintf(&b, "derp.paths file; stop with Ctrl-C. Running again reuses the same key and certificate.\n\n")
	return b.String()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
