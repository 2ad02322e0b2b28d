// Package relay is homederp's DERP and STUN service: a thin composition of
// tailscale.com/derp/derpserver and tailscale.com/net/stunserver, as
// upstream cmd/derper is, with the differences a box on a home line needs:
// TLS is always on (on any port), listener bind failures are errors, and
// the node key and certificates live in a directory the caller chooses.
package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/derp/derpserver"
	"tailscale.com/net/ktimeout"
	"tailscale.com/net/stunserver"
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

// Config is what the relay needs to run.
type Config struct {
	// Hostname is the name clients dial, e.g. "derp.example.com".
	Hostname string
	// DERPAddr is the TCP listen address for DERP over TLS, e.g. ":12345".
	DERPAddr string
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
}

// CertSource supplies the relay's TLS certificate. The relay asks on
// every handshake, so a source can swap certificates (renewal, a new
// manual pair) without dropping connected clients.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// StaticCert is a CertSource that always returns the same certificate.
type StaticCert struct{ Cert *tls.Certificate }

func (s StaticCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.Cert, nil
}

// Server is a running relay.
type Server struct {
	cfg  Config
	logf logger.Logf
	derp *derpserver.Server

	derpLn   net.Listener
	stunLns  []*stunserver.STUNServer
	httpSrv  *http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closing  atomic.Bool
	serveErr chan error
}

// New loads (or creates) the node key and prepares a relay. It does not
// bind anything; Start does.
func New(cfg Config, logf logger.Logf) (*Server, error) {
	if cfg.Certs == nil {
		return nil, errors.New("relay: no certificate source; TLS is always on")
	}
	if cfg.Hostname == "" {
		return nil, errors.New("relay: no hostname")
	}
	priv, err := LoadOrCreateKey(cfg.KeyPath)
	if err != nil {
		return nil, err
	}
	d := derpserver.New(priv, logger.WithPrefix(logf, "derp: "))
	return &Server{cfg: cfg, logf: logf, derp: d, serveErr: make(chan error, 1)}, nil
}

// DERP returns the underlying derpserver, for verify-clients, mesh and
// metrics settings.
func (s *Server) DERP() *derpserver.Server { return s.derp }

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
	ln, err := lc.Listen(ctx, "tcp", s.cfg.DERPAddr)
	if err != nil {
		cancel()
		return fmt.Errorf("relay: DERP listener on tcp %s: %w", s.cfg.DERPAddr, err)
	}
	s.derpLn = ln

	for _, addr := range s.cfg.STUNAddrs {
		ss := stunserver.New(ctx)
		if err := ss.Listen(addr); err != nil {
			cancel()
			ln.Close()
			return fmt.Errorf("relay: STUN listener on udp %s: %w", addr, err)
		}
		s.stunLns = append(s.stunLns, ss)
	}

	tlsConf := &tls.Config{
		GetCertificate: s.cfg.Certs.GetCertificate,
		NextProtos:     []string{"http/1.1"},
		MinVersion:     tls.VersionTLS12,
	}
	s.derp.ModifyTLSConfigToAddMetaCert(tlsConf)
	s.httpSrv = &http.Server{
		Handler:   s.handler(),
		TLSConfig: tlsConf,
		ErrorLog:  log.New(logger.HTTPServerLogFilter{Inner: s.logf}, "", 0),
		// As in derper: these mostly bound the TLS handshake and the
		// request before the DERP upgrade (deadlines are cleared when
		// derpserver hijacks the connection), so stuck half-open
		// handshakes cannot pile up.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	s.logf("relay: DERP over TLS listening on tcp %v for %q", ln.Addr(), s.cfg.Hostname)

	s.wg.Add(1 + len(s.stunLns))
	go func() {
		defer s.wg.Done()
		err := s.httpSrv.ServeTLS(ln, "", "")
		if !s.closing.Load() {
			s.serveErr <- fmt.Errorf("relay: DERP server stopped: %w", err)
		}
	}()
	for _, ss := range s.stunLns {
		go func() {
			defer s.wg.Done()
			if err := ss.Serve(); err != nil && !s.closing.Load() {
				select {
				case s.serveErr <- fmt.Errorf("relay: STUN server stopped: %w", err):
				default:
				}
			}
		}()
	}
	return nil
}

// Err returns a channel that receives an error if a listener stops
// serving before Close.
func (s *Server) Err() <-chan error { return s.serveErr }

// DERPAddr returns the bound DERP address (useful with port 0).
func (s *Server) DERPAddr() net.Addr { return s.derpLn.Addr() }

// STUNAddrs returns the bound STUN addresses.
func (s *Server) STUNAddrs() []net.Addr {
	var as []net.Addr
	for _, ss := range s.stunLns {
		as = append(as, ss.LocalAddr())
	}
	return as
}

// Close stops the listeners and disconnects every client.
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
	s.derp.Close()
	s.wg.Wait()
	return err
}

// handler is the mux on the public DERP port. It has no /debug/: the
// metrics live on the LAN-only web UI.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	derpHandler := derpserver.AddWebSocketSupport(s.derp, derpserver.Handler(s.derp))
	mux.Handle("/derp", derpHandler)
	// Clients of different ages use either path.
	mux.HandleFunc("/derp/probe", derpserver.ProbeHandler)
	mux.HandleFunc("/derp/latency-check", derpserver.ProbeHandler)
	mux.HandleFunc("/generate_204", derpserver.ServeNoContent)
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "User-agent: *\nDisallow: /\n")
	})
	mux.HandleFunc("/derpmap.json", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.DERPMap == nil {
			http.NotFound(w, r)
			return
		}
		b, err := s.cfg.DERPMap()
		if err != nil {
			s.logf("relay: rendering /derpmap.json: %v", err)
			http.Error(w, "DERP map unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "This is a DERP relay for Tailscale clients, run by homederp.\n")
	})
	return mux
}

// Leaf returns the parsed leaf of a certificate, for pinning it in the map.
func Leaf(c *tls.Certificate) (*x509.Certificate, error) {
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	if len(c.Certificate) == 0 {
		return nil, errors.New("empty certificate")
	}
	return x509.ParseCertificate(c.Certificate[0])
}
