package main

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gokrazy/gokrazy"
	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/internal/statefile"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/webui"
	"tailscale.com/client/local"
)

// The web UI listens on the LAN only: on the box on port 80 of every
// private interface address (gokrazy's own UI moves to another port in
// gokrazy-config), re-checked every webuiRefresh because DHCP may hand
// out a new lease; in -dev on one loopback address.
const (
	webuiBoxPort   = "80"
	webuiRefresh   = 30 * time.Second
	defaultDevAddr = "127.0.0.1:8080"
	devPasswordLen = 20
)

// webuiService runs the web UI's listeners.
type webuiService struct {
	ls       *webui.Listeners
	password string
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (a *app) startWebUI() error {
	pw, err := a.webuiPassword()
	if err != nil {
		return err
	}
	if pw == "" {
		a.logf("webui: no gokrazy password found (/perm/gokr-pw.txt, /etc/gokr-pw.txt): nobody can log in to the web UI")
	}
	// On gokrazy the hostname is the instance's (e.g. "homederp"), the
	// name the LAN's DHCP server and mDNS know the box by.
	boxName, _ := os.Hostname()
	srv, err := webui.New(webui.Options{
		Store:              a.store,
		Password:           pw,
		Logf:               a.logf,
		RelayStatus:        a.relay.status,
		DDNSStatus:         a.ddns.Status,
		PortMapStatus:      a.portmap.status,
		Traffic:            a.traffic.h.Samples,
		Applies:            a.applies,
		AwaitRelay:         a.relay.awaitApply,
		Metrics:            a.relay.metricsHandler(),
		MapOptions:         a.mapOptions,
		CheckDNSCredential: a.ddns.checkCredential,
		Tailscaled:         tailscaledClient,
		SyncDisks:          syscall.Sync,
		LANAddrs:           lanAddrs,
		Logs:               a.opts.logs,
		CertDir:            a.relay.certDir(),
		InstallManualCert: func(c config.Config, crtPEM, keyPEM []byte) (*x509.Certificate, error) {
			return relay.InstallManualPair(a.relay.certDir(), hostname(c), crtPEM, keyPEM, time.Now())
		},
		StateDir: a.opts.stateDir,
		BoxName:  boxName,
	})
	if err != nil {
		return err
	}
	ws := &webuiService{ls: &webui.Listeners{Handler: srv, Logf: a.logf}, password: pw, stop: make(chan struct{})}
	if a.opts.dev {
		addr := a.opts.webuiAddr
		if addr == "" {
			addr = defaultDevAddr
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("-webui-addr %q: %w", addr, err)
		}
		if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
			return fmt.Errorf("-webui-addr %q: with -dev the web UI listens on a loopback address only, e.g. 127.0.0.1:8080", addr)
		}
		if err := ws.ls.Set([]string{addr}); err != nil {
			if a.opts.webuiAddr != "" {
				return err
			}
			// The default port is taken (another dev box?): any
			// free loopback port will do, the summary prints it.
			a.logf("webui: %v; using a free port instead", err)
			if err := ws.ls.Set([]string{"127.0.0.1:0"}); err != nil {
				return err
			}
		}
	} else {
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			ws.follow(gokrazy.PrivateInterfaceAddrs, webuiBoxPort, webuiRefresh, a.logf)
		}()
	}
	a.webui = ws
	return nil
}

// follow keeps a listener on port of each address hosts returns (on the
// box gokrazy.PrivateInterfaceAddrs), looking again every interval, until
// stop.
func (ws *webuiService) follow(hosts func() ([]string, error), port string, interval time.Duration, logf func(string, ...any)) {
	lastErr := ""
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		hs, err := hosts()
		if err == nil {
			var addrs []string
			for _, h := range hs {
				addrs = append(addrs, net.JoinHostPort(h, port))
			}
			err = ws.ls.Set(addrs)
		}
		// A lasting problem (port 80 still taken by gokrazy) is
		// logged when it starts and when it changes, not every 30 s.
		if msg := fmt.Sprint(err); err != nil && msg != lastErr {
			logf("webui: %v", err)
			lastErr = msg
		} else if err == nil {
			lastErr = ""
		}
		select {
		case <-ws.stop:
			return
		case <-t.C:
		}
	}
}

func (ws *webuiService) close() {
	if ws == nil {
		return
	}
	close(ws.stop)
	ws.wg.Wait()
	ws.ls.Close()
}

// url is where the web UI answers, for the -dev summary.
func (ws *webuiService) url() string {
	for _, a := range ws.ls.Addrs() {
		return "http://" + a.String() + "/"
	}
	return "(not listening)"
}

// webuiPassword is gokrazy's password, so one password opens both UIs,
// or the one in -password-file (a box that is not gokrazy). -dev, which
// has none, generates one into the state directory (0600) and reuses it
// on the next run.
func (a *app) webuiPassword() (string, error) {
	if a.opts.passwordFile != "" {
		b, err := os.ReadFile(a.opts.passwordFile)
		if err != nil {
			return "", fmt.Errorf("reading the web UI password: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if !a.opts.dev {
		for _, p := range []string{"/perm/gokr-pw.txt", "/etc/gokr-pw.txt"} {
			b, err := os.ReadFile(p)
			if err == nil {
				return strings.TrimSpace(string(b)), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("reading the gokrazy password: %w", err)
			}
		}
		return "", nil
	}
	p := filepath.Join(a.opts.stateDir, "webui-password")
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	pw, err := randomPassword(devPasswordLen)
	if err != nil {
		return "", err
	}
	if err := statefile.Write(p, []byte(pw+"\n"), 0600); err != nil {
		return "", fmt.Errorf("saving the dev web UI password: %w", err)
	}
	return pw, nil
}

// randomPassword avoids look-alike characters, since people type it.
func randomPassword(n int) (string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[j.Int64()]
	}
	return string(b), nil
}

// tailscaledClients are the LocalAPI clients by socket path. One client
// per socket, reused: each local.Client keeps its own HTTP transport with
// idle connections, which a client per request would leak.
var tailscaledClients struct {
	sync.Mutex
	m map[string]*local.Client
}

// tailscaledClient talks to the box's tailscaled on the configured socket,
// or on the platform default (on gokrazy /perm/tailscaled/tailscaled.sock).
func tailscaledClient(c config.Config) *local.Client {
	tc := &tailscaledClients
	tc.Lock()
	defer tc.Unlock()
	s := c.Relay.TailscaledSocket
	if lc := tc.m[s]; lc != nil {
		return lc
	}
	lc := &local.Client{}
	if s != "" {
		lc = &local.Client{Socket: s, UseSocketOnly: true}
	}
	if tc.m == nil {
		tc.m = map[string]*local.Client{}
	}
	tc.m[s] = lc
	return lc
}

// lanAddrs are the box's private addresses, the router's forward target.
func lanAddrs() []netip.Addr {
	hosts, err := gokrazy.PrivateInterfaceAddrs()
	if err != nil {
		return nil
	}
	var as []netip.Addr
	for _, h := range hosts {
		if a, err := netip.ParseAddr(h); err == nil && !a.IsLoopback() && !tailnetRange.Contains(a) {
			as = append(as, a)
		}
	}
	slices.SortFunc(as, func(a, b netip.Addr) int { return a.Compare(b) })
	return as
}

// tailnetRange holds the box's own tailnet address, which is private to
// gokrazy but no target for a router's port-forward.
var tailnetRange = netip.MustParsePrefix("100.64.0.0/10")
