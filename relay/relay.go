// Package relay is homederp's DERP and STUN service: a thin composition of
// tailscale.com/derp/derpserver and tailscale.com/net/stunserver, as
// upstream cmd/derper is, with the differences a box on a home line needs:
// TLS is always on (on any port) with certificates that can be swapped
// while clients stay connected, listener bind failures are errors, the
// admission policy, mesh and rate limits change without restarting the
// listeners, refused clients are counted instead of logged one by one,
// and the metrics live on a handler for the LAN, not on the public port.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/net/ktimeout"
	"tailscale.com/net/stunserver"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

// TCP settings, as upstream derper sets them.
const (
	// tcpKeepAlive is long to save mobile batteries; DERP has its own
	// keepalive frames every minute.
	tcpKeepAlive = 10 * time.Minute
	// tcpUserTimeout cleans up connections whose peer vanished.
	tcpUserTimeout = 15 * time.Second
)

// Defaults for the Config fields that may be left zero.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	DefaultPollInterval     = 5 * time.Second
)

// Config is what the relay needs to run. Changing Hostname, DERPAddrs or
// STUNAddrs needs a new Server; everything in Policy and the certificate
// source can change while it runs (Apply, SetCertSource).
type Config struct {
	// Hostname is the name clients dial, e.g. "derp.example.com".
	Hostname string
	// DERPAddrs are the TCP listen addresses for DERP over TLS, e.g.
	// [":12345"] (one dual-stack socket) or ["127.0.0.1:12345",
	// "[::1]:12345"].
	DERPAddrs []string
	// STUNAddrs are the UDP listen addresses for STUN, e.g. [":3478"]
	// (one dual-stack socket) or ["127.0.0.1:3478", "[::1]:3478"].
	STUNAddrs []string
	// KeyPath is the file holding the DERP node key, e.g.
	// "/perm/homederp/derper.key". It is created on first use.
	KeyPath string
	// Certs supplies the TLS certificate on every handshake.
	Certs CertSource
	// DERPMap returns the JSON served at /derpmap.json, so headscale can
	// fetch the region from the relay itself. nil serves 404.
	DERPMap func() ([]byte, error)

	// Policy is the initial admission, mesh and rate-limit policy.
	Policy Policy

	// HandshakeTimeout bounds the TLS handshake and, separately, the
	// wait for the HTTP request that upgrades to DERP, so half-open and
	// idle connections cannot pile up before DERP starts (derpserver
	// then bounds the DERP handshake itself to 10 s). Zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a kept-alive HTTP connection that sends no
	// further request (e.g. after a /derp/probe). Zero means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// PollInterval is how often the box's tailscaled is asked for its
	// state while verify-clients is on. Zero means DefaultPollInterval.
	PollInterval time.Duration
	// VerdictTimeout bounds each admission check (tailscaled or the
	// verify URL); a client without a verdict by then is refused. Zero
	// means DefaultVerdictTimeout.
	VerdictTimeout time.Duration
	// MaxPendingVerdicts caps the admission checks in flight; a client
	// beyond it is refused at once. Zero means DefaultMaxPendingVerdicts.
	MaxPendingVerdicts int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is a relay. It is safe for concurrent use.
type Server struct {
	cfg     Config
	logf    logger.Logf
	priv    key.NodePrivate
	started time.Time

	certs    atomic.Pointer[certHolder]
	gen      atomic.Pointer[generation]
	refusals *refusalLog
	reach    *reachLog
	admit    *admitter
	accept   *acceptLimiter
	ts       *tailscaledWatch
	trusted  atomic.Pointer[[]netip.Prefix] // Policy.TrustedProxies in effect

	mu      sync.Mutex // guards the fields below and serializes Apply
	policy  Policy
	running bool     // between Start and Close: mesh links and pollers run
	retired counters // what retired generations counted

	stunBase stunCounts // the process-global STUN counters at Start

	derpLns  []net.Listener
	stunLns  []*stunserver.STUNServer
	httpSrv  *http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closing  atomic.Bool
	serveErr chan error
}

// New loads (or creates) the node key and prepares a relay with the
// policy in cfg. It does not bind anything; Start does.
func New(cfg Config, logf logger.Logf) (*Server, error) {
	if cfg.Certs == nil {
		return nil, errors.New("relay: no certificate source; TLS is always on")
	}
	if cfg.Hostname == "" {
		return nil, errors.New("relay: no hostname")
	}
	if len(cfg.DERPAddrs) == 0 {
		return nil, errors.New("relay: no DERP listen address")
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.VerdictTimeout == 0 {
		cfg.VerdictTimeout = DefaultVerdictTimeout
	}
	if cfg.MaxPendingVerdicts == 0 {
		cfg.MaxPendingVerdicts = DefaultMaxPendingVerdicts
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	priv, err := LoadOrCreateKey(cfg.KeyPath)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		logf:     logf,
		priv:     priv,
		serveErr: make(chan error, 1),
		refusals: newRefusalLog(logf, cfg.Now),
		reach:    newReachLog(cfg.Now),
		accept:   newAcceptLimiter(cfg.Now),
		policy:   cfg.Policy,
	}
	s.admit = newAdmitter(cfg, logf, s.refusals)
	s.ts = newTailscaledWatch(s.admit.localClient, logf, cfg.PollInterval, cfg.VerdictTimeout)
	s.admit.ts = s.ts
	s.certs.Store(&certHolder{cfg.Certs})
	g, err := s.newGeneration(cfg.Policy)
	if err != nil {
		return nil, err
	}
	s.gen.Store(g)
	s.applyLiveLocked(cfg.Policy)
	return s, nil
}

// Start binds the DERP and STUN listeners and serves them until Close. A
// bind failure of any listener is returned (and nothing keeps running):
// upstream derper silently drops a STUN bind error, homederp does not.
func (s *Server) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel

	lc := net.ListenConfig{
		Control:   ktimeout.UserTimeout(tcpUserTimeout),
		KeepAlive: tcpKeepAlive,
	}
	// MPTCP does not support TCP_USER_TIMEOUT (as of 2025).
	lc.SetMultipathTCP(false)
	fail := func(err error) error {
		cancel()
		for _, ln := range s.derpLns {
			ln.Close()
		}
		s.derpLns, s.stunLns = nil, nil
		return err
	}
	for _, addr := range s.cfg.DERPAddrs {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("relay: DERP listener on tcp %s: %w", addr, err))
		}
		s.derpLns = append(s.derpLns, ln)
	}

	s.stunBase = readSTUNCounts()
	for _, addr := range s.cfg.STUNAddrs {
		ss := stunserver.New(ctx)
		if err := ss.Listen(addr); err != nil {
			return fail(fmt.Errorf("relay: STUN listener on udp %s: %w", addr, err))
		}
		s.stunLns = append(s.stunLns, ss)
	}

	s.httpSrv = &http.Server{
		Handler:   s.handler(),
		TLSConfig: s.tlsConfig(),
		ErrorLog:  log.New(logger.HTTPServerLogFilter{Inner: s.logf}, "", 0),
		// ReadHeaderTimeout is the shortest of these, so it bounds the
		// TLS handshake (net/http uses the shortest as handshake
		// deadline) and then, on its own clock, the wait for the
		// request that upgrades to DERP. The deadlines are cleared
		// when derpserver hijacks the connection.
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		ReadTimeout:       max(30*time.Second, s.cfg.HandshakeTimeout),
		WriteTimeout:      max(30*time.Second, s.cfg.HandshakeTimeout),
		IdleTimeout:       s.cfg.IdleTimeout,
	}
	s.mu.Lock()
	s.started = s.cfg.Now()
	s.running = true
	s.applyLiveLocked(s.policy)
	s.mu.Unlock()
	s.logf("relay: DERP over TLS listening on tcp %v for %q", addrList(s.DERPAddrs()), s.cfg.Hostname)

	s.wg.Add(len(s.derpLns) + len(s.stunLns))
	for _, ln := range s.derpLns {
		go func() {
			defer s.wg.Done()
			s.stopped(fmt.Errorf("relay: DERP server on %v stopped: %w", ln.Addr(), s.httpSrv.ServeTLS(s.accept.wrap(ln), "", "")))
		}()
	}
	for _, ss := range s.stunLns {
		go func() {
			defer s.wg.Done()
			if err := ss.Serve(); err != nil {
				s.stopped(fmt.Errorf("relay: STUN server stopped: %w", err))
			}
		}()
	}
	return nil
}

// stopped reports a listener that stopped serving, unless the relay is
// closing.
func (s *Server) stopped(err error) {
	if s.closing.Load() {
		return
	}
	select {
	case s.serveErr <- err:
	default:
	}
}

// Err returns a channel that receives an error if a listener stops
// serving before Close. It is closed when Close returns, so a goroutine
// waiting on it ends with the relay.
func (s *Server) Err() <-chan error { return s.serveErr }

// DERPAddr returns the first bound DERP address (useful with port 0).
func (s *Server) DERPAddr() net.Addr { return s.derpLns[0].Addr() }

// DERPAddrs returns the bound DERP addresses.
func (s *Server) DERPAddrs() []net.Addr {
	var as []net.Addr
	for _, ln := range s.derpLns {
		as = append(as, ln.Addr())
	}
	return as
}

func addrList(as []net.Addr) string {
	var ss []string
	for _, a := range as {
		ss = append(ss, a.String())
	}
	return strings.Join(ss, ", ")
}

// STUNAddrs returns the bound STUN addresses.
func (s *Server) STUNAddrs() []net.Addr {
	var as []net.Addr
	for _, ss := range s.stunLns {
		as = append(as, ss.LocalAddr())
	}
	return as
}

// PublicKey returns the relay's DERP node key, which clients and mesh
// peers see.
func (s *Server) PublicKey() key.NodePublic { return s.priv.Public() }

// Close stops the listeners, the mesh links and the tailscaled poller,
// and disconnects every client.
func (s *Server) Close() error {
	if s.closing.Swap(true) {
		return nil
	}
	if s.cancel != nil {
		s.cancel()
	}
	var err error
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.httpSrv.Shutdown(ctx)
	}
	s.mu.Lock()
	s.running = false
	g := s.gen.Load()
	s.mu.Unlock()
	g.retire()
	s.ts.stop()
	s.admit.close()
	s.refusals.close()
	s.wg.Wait()
	close(s.serveErr)
	return err
}
