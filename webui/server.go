// Package webui is homederp's LAN web interface: setup in the order a
// person thinks (name and DNS, router, region, certificate, tailnet), the
// DERP map in every form Tailscale and headscale take, a checker for maps
// people paste, and a status page. Every page also answers JSON when asked
// with "Accept: application/json".
//
// It is small on purpose: html/template, embedded assets, one CSS file
// and a little vanilla JavaScript (copy buttons, a busy note while a slow
// check runs, the status page refreshing itself). The server takes
// everything it shows through Options (status functions, the config
// store, the box's tailscaled), so it runs in tests on loopback with
// synthetic values, and in the appliance with the real services.
package webui

import (
	"bytes"
	"context"
	"crypto/x509"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/portmap"
	"golang.org/x/net/xsrftoken"
	"golang.org/x/text/language"
	"tailscale.com/client/local"
	"tailscale.com/types/logger"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options is what the web UI needs from the appliance. Only Store and
// Password are required; a missing status function shows "not available".
type Options struct {
	// Store is the configuration the setup pages edit and every page
	// renders from, e.g. config.Open("/perm/homederp").
	Store *config.Store
	// Password is the gokrazy password (/perm/gokr-pw.txt). Empty locks
	// everyone out; it never means "no password".
	Password string
	Logf     logger.Logf      // e.g. log.Printf
	Now      func() time.Time // nil means time.Now

	// RelayStatus and DDNSStatus return snapshots of those services.
	RelayStatus func() relay.Status
	DDNSStatus  func() ddns.Status
	// PortMapStatus returns what the home router said about the port
	// forwards the box asks for (package portmap).
	PortMapStatus func() portmap.Status
	// Traffic returns the relay's samples of the last day, oldest first,
	// for the status page's chart (e.g. relay.TrafficHistory.Samples).
	Traffic func() []relay.TrafficSample
	// Applies says what each service last did with the saved
	// configuration; nil shows nothing.
	Applies func() []ServiceApply
	// AwaitRelay waits, at most until ctx ends, for the relay to apply
	// configuration generation gen (config.Store.Generation after a
	// save) and returns its result: nil when the relay runs with it. The
	// ports step reports it, so that "saved" also says what the relay
	// did. nil reports only the save.
	AwaitRelay func(ctx context.Context, gen uint64) error
	// Metrics serves Prometheus text at /metrics, e.g. the relay's
	// metrics handler. nil answers 404.
	Metrics http.Handler
	// MapOptions returns the map settings that do not live in the
	// config: the pin of the certificate being served, NoIPv4.
	MapOptions func() derpmap.Options
	// CheckDNSCredential verifies a DNS provider credential (the
	// Cloudflare token, a DNSPod or AliDNS key pair as
	// config.KeyPair.Encode writes it, or the TSIG secret) against the
	// settings about to be saved, before anything is stored, with calls
	// that change nothing. nil saves unchecked, and says so.
	CheckDNSCredential func(ctx context.Context, c config.Config, secret string) error
	// Tailscaled returns a LocalAPI client for the box's tailscaled for
	// the given config (its relay.tailscaled_socket), or nil if the box
	// has none.
	Tailscaled func(config.Config) *local.Client
	// SyncDisks makes what tailscaled wrote durable (on the box sync(2))
	// before the page confirms a login or logout: tailscaled renames its
	// state file into place without syncing the directory, so a power
	// cut right after a confirmed login lost it (board/image's
	// TestPowerCuts: NeedsLogin after the boot). nil skips it.
	SyncDisks func()
	// LANAddrs returns the box's LAN addresses, the target of the
	// router's port-forward, e.g. [192.168.1.23].
	LANAddrs func() []netip.Addr
	// Logs is the appliance's recent log, shown on the status page.
	Logs *LogRing
	// CertDir is where manual certificates go, e.g. "/perm/homederp/certs".
	CertDir string
	// InstallManualCert checks a certificate (with its chain) and key
	// pasted into the setup page and stores them for manual mode, e.g.
	// relay.InstallManualPair. It refuses a pair that cannot serve the
	// configured hostname, leaving the stored one as it was. nil hides
	// the form.
	InstallManualCert func(c config.Config, crtPEM, keyPEM []byte) (*x509.Certificate, error)
	// StateDir is where the web UI keeps its sessions (SessionsFile,
	// 0600), e.g. "/perm/homederp". "" keeps them in memory only, so a
	// restart logs everyone out.
	StateDir string
	// BoxName is the box's own hostname, e.g. "homederp". Requests for it
	// (bare, or under a local suffix such as .lan) are answered, besides
	// the box's addresses and the relay's configured name; any other Host
	// is refused (DNS rebinding).
	BoxName string
}

// Server is the web UI's http.Handler.
type Server struct {
	o        Options
	static   http.Handler
	mux      *http.ServeMux
	sessions sessions
	limiter  loginLimiter
	refused  refusals
	langs    []*lang // the UI's languages, the default first
	// langMatcher picks one of langs for an Accept-Language.
	langMatcher language.Matcher
	// refresh is how often the status page reloads its figures.
	refresh time.Duration
}

// New parses the templates and returns the web UI.
func New(o Options) (*Server, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("webui: no config store")
	}
	if o.Logf == nil {
		o.Logf = logger.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		o:        o,
		sessions: sessions{now: o.Now, logf: o.Logf},
		limiter:  loginLimiter{now: o.Now},
		refused:  refusals{now: o.Now, logf: o.Logf},
		refresh:  statusRefresh,
	}
	if o.StateDir != "" {
		s.sessions.path = filepath.Join(o.StateDir, SessionsFile)
	}
	if err := s.sessions.open(); err != nil {
		return nil, err
	}
	var err error
	if s.langs, _, s.langMatcher, err = loadLocales(); err != nil {
		return nil, err
	}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	s.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		s.static.ServeHTTP(w, r)
	})
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.loginPost)
	m.HandleFunc("GET /lang", s.setLang)
	m.Handle("POST /logout", s.post(s.logoutPost))

	m.Handle("GET /{$}", s.get(s.statusPage))
	m.Handle("GET /setup", s.get(s.setupPage))
	m.Handle("POST /setup/name", s.post(s.saveName))
	m.Handle("POST /setup/ports", s.post(s.savePorts))
	m.Handle("POST /setup/region", s.post(s.saveRegion))
	m.Handle("POST /setup/cert", s.post(s.saveCert))
	m.Handle("POST /setup/certfiles", s.post(s.installCert))
	m.Handle("POST /setup/tailnet", s.post(s.tailnetLogin))
	m.Handle("POST /setup/tailnet/logout", s.post(s.tailnetLogout))
	m.Handle("POST /setup/verify", s.post(s.saveVerify))
	m.Handle("POST /setup/peerrelay", s.post(s.savePeerRelay))

	m.Handle("GET /derpmap", s.get(s.mapPage))
	m.Handle("GET /derpmap/derpmap.json", s.get(s.mapDownload))
	m.Handle("GET /derpmap/derpmap.yaml", s.get(s.mapDownload))
	m.Handle("GET /derpmap/policy.hujson", s.get(s.mapDownload))
	m.Handle("POST /derpmap/check", s.post(s.mapCheck))

	m.Handle("GET /metrics", s.get(func(w http.ResponseWriter, r *http.Request, _ *user) {
		if s.o.Metrics == nil {
			http.Error(w, s.tr(r).S("http.no_metrics"), http.StatusNotFound)
			return
		}
		s.o.Metrics.ServeHTTP(w, r)
	}))
	s.mux = m
}

// ServeHTTP applies what every response gets (security headers, the
// private-source check) and routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No inline script or style anywhere, so the policy can be strict.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if s.guard(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

type userHandler func(http.ResponseWriter, *http.Request, *user)

// get wraps a handler that needs a logged-in user.
func (s *Server) get(h userHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := s.authenticate(w, r); u != nil {
			h(w, r, u)
		}
	})
}

// maxForm bounds a POST body; the DERP map checker takes more (maxMap).
const maxForm = 64 << 10

// bodyLimit is the most a POST to path may carry. The map checker's form
// may carry a full text box and a full file, so that a map over maxMap
// still arrives and gets its own message (and stays in the text box).
func bodyLimit(path string) int64 {
	if path == "/derpmap/check" {
		return 2*maxMap + maxForm
	}
	return maxForm
}

// parseBody reads a form, URL-encoded or multipart, within bodyLimit.
func (s *Server) parseBody(w http.ResponseWriter, r *http.Request) error {
	if r.PostForm != nil {
		return nil // read already
	}
	limit := bodyLimit(r.URL.Path)
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		return r.ParseMultipartForm(limit) // all in memory: the limit is small
	}
	return r.ParseForm()
}

// post wraps a form handler: a same-origin request, a logged-in user, a
// bounded and parseable body, and a valid CSRF token for this action.
func (s *Server) post(h userHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && o != "null" {
			if ou, err := url.Parse(o); err != nil || ou.Host != r.Host {
				s.forbidden(w, r, s.tr(r).S("message.other_site", "Origin", o))
				return
			}
		}
		u := s.authenticate(w, r)
		if u == nil {
			return
		}
		if err := s.parseBody(w, r); err != nil {
			if mb := new(http.MaxBytesError); errors.As(err, &mb) {
				s.badRequest(w, r, s.tr(r).S("message.too_large", "KiB", mb.Limit>>10))
				return
			}
			s.badRequest(w, r, s.tr(r).S("message.unreadable", "Err", err.Error()))
			return
		}
		if !s.csrfValid(r.PostForm.Get("csrf"), u.csrfID(), r.URL.Path) {
			s.forbidden(w, r, s.tr(r).S("message.csrf"))
			return
		}
		h(w, r, u)
	})
}

func (s *Server) csrfToken(userID, action string) string {
	return xsrftoken.Generate(s.sessions.csrfKey, userID, action)
}

func (s *Server) csrfValid(tok, userID, action string) bool {
	return tok != "" && xsrftoken.Valid(tok, s.sessions.csrfKey, userID, action)
}

// page is what the layout template renders. Body is the page's own view;
// it alone is the JSON answer.
type page struct {
	Title string // in the page's language
	Lang  string // e.g. "zh-CN"
	// LangLinks switch to the other languages.
	LangLinks []langLink
	Nav       string // "status", "setup" or "derpmap"; "" hides the nav
	Flash     []flashMsg
	CSRF      func(action string) string // token for a form posting to action
	Body      any
	Status    int

	session *session // whose flash messages the page shows
}

func (s *Server) newPage(u *user, title, nav string, body any) *page {
	return &page{
		Title:   title,
		Nav:     nav,
		session: u.session,
		CSRF:    func(action string) string { return s.csrfToken(u.csrfID(), action) },
		Body:    body,
	}
}

// render writes p as HTML (into a buffer first, so a template error is a
// clean 500 rather than half a page) or, when asked, its Body as JSON.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	if wantsJSON(r) {
		writeJSON(w, status, p.Body)
		return
	}
	l := s.langFor(r)
	t := l.tmpl[name]
	var buf bytes.Buffer
	if t == nil {
		s.o.Logf("webui: no template %q", name)
		http.Error(w, "500 internal error: missing page template", http.StatusInternalServerError)
		return
	}
	p.Status = status
	p.Lang = l.Tag
	p.LangLinks = s.langLinks(r, l, pagePath(name))
	// Flash messages are for people: the status page refreshing itself
	// (or a JSON poll, answered above) must not eat them.
	if r.Header.Get(refreshHeader) == "" {
		p.Flash = append(p.Flash, s.sessions.takeFlash(p.session)...)
	}
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.o.Logf("webui: rendering %s: %v", name, err)
		http.Error(w, l.tr.S("http.render_failed"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "500 internal error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// wantsJSON: the same URL answers JSON when the client asks for it.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// refreshHeader marks the status page's requests for fresh figures
// (static/ui.js).
const refreshHeader = "X-Homederp-Refresh"

// messageView is the body of an error page.
type messageView struct {
	Error string `json:"error"`
}

func (s *Server) badRequest(w http.ResponseWriter, r *http.Request, msg string) {
	s.render(w, r, http.StatusBadRequest, "message", &page{Title: s.tr(r).S("message.bad_request"), Body: messageView{msg}})
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, msg string) {
	s.render(w, r, http.StatusForbidden, "message", &page{Title: s.tr(r).S("message.refused"), Body: messageView{msg}})
}

// pagePath is where the page a template renders lives, for the language
// switch to come back to after a form's answer.
func pagePath(name string) string {
	switch name {
	case "setup", "derpmap", "login":
		return "/" + name
	}
	return "/"
}

// flash queues a message for the user's next page (the target of a
// redirect), shown in the section anchor ("" for the top).
func (s *Server) flash(u *user, anchor, msg string) {
	s.sessions.addFlash(u.session, flashMsg{anchor, msg})
}

// reqCtx bounds the work one request does on behalf of the page.
func reqCtx(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}
