package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/internal/statefile"
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
}

// app wires the services to the config store.
type app struct {
	opts      options
	logf      logger.Logf
	store     *config.Store
	relay     *relayService
	ddns      *ddnsService
	peerRelay *peerRelayService
	portmap   *portmapService
	traffic   *trafficService
	webui     *webuiService
	errc      chan error // a service that stopped on its own

	mu sync.Mutex // serialises writeDERPMap
}

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

	a := &app{opts: opts, logf: logf, store: store, errc: make(chan error, 4)}
	a.relay = newRelayService(a)
	if err := a.relay.apply(store.Config()); err != nil {
		return nil, err
	}
	a.ddns = newDDNSService(a)
	a.ddns.apply(store.Config())
	a.peerRelay = newPeerRelayService(a)
	a.portmap = newPortmapService(a)
	a.portmap.apply(store.Config())
	a.traffic = startTraffic(a.relay.status)
	if err := a.writeDERPMap(); err != nil {
		a.peerRelay.close()
		a.traffic.close()
		a.portmap.close()
		return nil, err
	}
	store.Subscribe(func(c config.Config) {
		if err := a.relay.apply(c); err != nil {
			logf("applying the new configuration to the relay: %v", err)
		}
		a.ddns.apply(c)
		a.peerRelay.apply(c)
		a.portmap.apply(c)
		if err := a.writeDERPMap(); err != nil {
			logf("%v", err)
		}
	})
	if err := a.startWebUI(); err != nil {
		a.peerRelay.close()
		a.traffic.close()
		a.portmap.close()
		a.ddns.close()
		a.relay.close()
		return nil, fmt.Errorf("starting the web UI: %w", err)
	}
	return a, nil
}

func (a *app) close() {
	a.webui.close()
	a.peerRelay.close()
	a.traffic.close()
	a.portmap.close()
	a.ddns.close()
	a.relay.close()
}

// hostname is the name the relay serves: the configured one, or before
// setup a placeholder so the box still answers STUN and TLS on the LAN.
func hostname(c config.Config) string {
	if c.Hostname != "" {
		return c.Hostname
	}
	return "homederp"
}

// derpMapJSON renders the home-region map from the running configuration
// and the certificate the relay serves.
func (a *app) derpMapJSON() ([]byte, error) {
	c := a.store.Config()
	c.Hostname = hostname(c)
	return derpmap.JSON(derpmap.Map(c, a.mapOptions()))
}

func (a *app) derpMapPath() string { return filepath.Join(a.opts.stateDir, "derpmap.json") }

// writeDERPMap keeps a copy of the map in the state directory, where a
// newcomer (or a script) can pick it up.
func (a *app) writeDERPMap() error {
	// Rendering and writing happen under one lock: the map is rewritten
	// from several goroutines (config changes, ddns, the ACME manager
	// when the trusted certificate arrives), and a render made before a
	// change must not land on disk after the render made after it.
	a.mu.Lock()
	defer a.mu.Unlock()
	b, err := a.derpMapJSON()
	if err != nil {
		return fmt.Errorf("rendering the DERP map: %w", err)
	}
	if err := statefile.Write(a.derpMapPath(), b, 0644); err != nil {
		return fmt.Errorf("writing the DERP map: %w", err)
	}
	return nil
}

// listenHosts are the addresses the public services bind: loopback in
// -dev, every address otherwise.
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
	fmt.Fprintf(&b, "  DERP:      https://%s/derp  (TLS, self-signed certificate pinned in the map)\n", net.JoinHostPort(hostname(c), strconv.Itoa(c.Relay.DERPPort)))
	var stun []string
	for _, h := range a.listenHosts() {
		stun = append(stun, "udp "+net.JoinHostPort(h, strconv.Itoa(c.Relay.STUNPort)))
	}
	fmt.Fprintf(&b, "  STUN:      %s\n", strings.Join(stun, ", "))
	fmt.Fprintf(&b, "  DERP map:  %s\n", a.derpMapPath())
	fmt.Fprintf(&b, "             (also served at https://%s/derpmap.json)\n", net.JoinHostPort(hostname(c), strconv.Itoa(c.Relay.DERPPort)))
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
