// Package pebbletest runs Let's Encrypt's Pebble ACME test CA inside the
// test process: Pebble's db, ca, va and wfe packages composed the way its
// cmd/pebble/main.go composes them, with the VA's -dnsserver pointed at a
// DNS server the test started (a real BIND 9 from internal/bindtest, or the
// Cloudflare fake's DNS side). Validation is real: Pebble looks up the
// _acme-challenge TXT record there and refuses the order if it is wrong.
//
//	ca := pebbletest.Start(t, pebbletest.Options{DNSServer: bind.Addr.String()})
//	// ACME directory: ca.DirectoryURL; trust the API with ca.APIRoots and
//	// the certificates it issues with ca.Roots.
//
// The ACME API is served over HTTPS with httptest's own certificate, which
// an ACME client trusts through APIRoots (for certmagic: the ACMEIssuer's
// TrustedRoots), never by turning verification off.
package pebbletest

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// Options configure the CA.
type Options struct {
	// DNSServer is where the VA looks up challenge records (over TCP, as
	// Pebble does), e.g. "127.0.0.1:40053". Required unless AlwaysValid:
	// a test must never fall back to the system's resolver.
	DNSServer string
	// AlwaysValid makes Pebble accept every challenge without looking
	// (PEBBLE_VA_ALWAYS_VALID=1), for tests that need a certificate
	// chained to Pebble's root (see Issue) and do not test validation.
	AlwaysValid bool
	// Validity of issued certificates, in whole seconds; 0 = Pebble's
	// default of 90 days. A short validity makes renewal happen in a test.
	Validity time.Duration
	// Logf receives Pebble's log; nil = quiet. Lines written after the
	// test ended are dropped.
	Logf func(format string, args ...any)
	// Listener serves the ACME API, e.g. one opened inside a network
	// namespace (netnstest.NS.MustListen) for a VM there; nil = a new
	// one on the host's 127.0.0.1. httptest's certificate is valid for
	// 127.0.0.1, ::1, example.com and *.example.com: a client reaching
	// the API by another address needs such a name for it.
	Listener net.Listener
}

// Server is a running Pebble.
type Server struct {
	// DirectoryURL is the ACME directory, e.g.
	// "https://127.0.0.1:40001/dir".
	DirectoryURL string
	// APIRoots holds the certificate of the HTTPS API.
	APIRoots *x509.CertPool
	// Root is Pebble's issuing root; Roots is a pool holding just it.
	Root  *x509.Certificate
	Roots *x509.CertPool

	srv      *httptest.Server
	down     atomic.Bool
	requests atomic.Int64 // every HTTP request, also while down
	orders   atomic.Int64 // new-order requests Pebble itself handled
	chals    atomic.Int64 // challenge responses: "validate now" requests
}

// Start runs Pebble until the test ends. It sets Pebble's environment
// knobs for the test's duration (so the test must not be parallel):
// PEBBLE_VA_NOSLEEP=1 (no random sleep before validating),
// PEBBLE_VA_ALWAYS_VALID=0 (really validate, unless AlwaysValid) and PEBBLE_AUTHZREUSE=0
// (every order is validated anew, renewals included).
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.DNSServer == "" && !o.AlwaysValid {
		t.Fatal("pebbletest: Options.DNSServer is required")
	}
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "0")
	if o.AlwaysValid {
		t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	}
	t.Setenv("PEBBLE_AUTHZREUSE", "0")

	logger := log.New(newLogWriter(t, o.Logf), "pebble: ", 0)
	profiles := map[string]ca.Profile{
		"default": {Description: "The default profile", ValidityPeriod: uint64(o.Validity / time.Second)},
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	validator := va.New(logger, 0, 0, false, o.DNSServer, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	mux := front.Handler()

	s := &Server{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if s.down.Load() {
			// What a CA in trouble answers: an ACME problem with 503.
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]any{
				"type":   "urn:ietf:params:acme:error:serverInternal",
				"detail": "the CA is down for maintenance (pebbletest)",
				"status": http.StatusServiceUnavailable,
			})
			return
		}
		if r.Method == http.MethodPost {
			switch {
			case strings.HasPrefix(r.URL.Path, "/order-plz"):
				s.orders.Add(1)
			case strings.HasPrefix(r.URL.Path, "/chalZ/"):
				s.chals.Add(1)
			}
		}
		mux.ServeHTTP(w, r)
	}))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients that give up mid-handshake
	if o.Listener != nil {
		s.srv.Listener.Close()
		s.srv.Listener = o.Listener
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)

	s.DirectoryURL = s.srv.URL + wfe.DirectoryPath
	s.APIRoots = x509.NewCertPool()
	s.APIRoots.AddCert(s.srv.Certificate())
	s.Root = authority.GetRootCert(0).Cert
	s.Roots = x509.NewCertPool()
	s.Roots.AddCert(s.Root)
	return s
}

// APIRootPEM is the certificate of the HTTPS API in PEM, e.g. for an
// ACME client's configuration of trusted roots.
func (s *Server) APIRootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// SetDown makes every request fail with 503 and an ACME problem (true) or
// reach Pebble again (false), as a CA outage would.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// Requests returns how many HTTP requests reached the server, counting
// those answered with 503 while down.
func (s *Server) Requests() int64 { return s.requests.Load() }

// NewOrders returns how many new-order requests Pebble handled.
func (s *Server) NewOrders() int64 { return s.orders.Load() }

// ChallengeRequests returns how many challenge POSTs Pebble handled: a
// client asking the CA to validate (or polling a challenge). Each
// validation that fails counts against a real CA's failed-validation
// limit.
func (s *Server) ChallengeRequests() int64 { return s.chals.Load() }

// logWriter forwards Pebble's log lines to logf until the test ends: the
// VA keeps goroutines that may still log afterwards.
type logWriter struct {
	mu   sync.Mutex
	logf func(format string, args ...any)
}

func newLogWriter(t testing.TB, logf func(string, ...any)) *logWriter {
	w := &logWriter{logf: logf}
	t.Cleanup(func() {
		w.mu.Lock()
		w.logf = nil
		w.mu.Unlock()
	})
	return w
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.logf != nil {
		w.logf("%s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
