package webui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gokrazy/gokrazy/ifaddr"
	"golang.org/x/time/rate"
	"tailscale.com/util/lru"
)

// Authentication: the gokrazy password, checked two ways.
//
//   - A login form that sets a session cookie, for people: it works with
//     phone password managers, can be logged out of, and lets the page say
//     why a login failed (wrong password, too many attempts).
//   - HTTP Basic auth with user "gokrazy", as gokrazy's own UI takes it,
//     for scripts and Prometheus (curl -u gokrazy:... -H 'Accept:
//     application/json').
//
// Both go through one rate limiter per source address. Sessions live in
// memory only: a restart logs everyone out, which is fine for a LAN box.

const (
	sessionCookie = "homederp_session"
	loginCookie   = "homederp_login" // binds the login form's CSRF token
	basicUser     = "gokrazy"

	sessionIdle     = 24 * time.Hour
	sessionLifetime = 7 * 24 * time.Hour
	maxSessions     = 64 // oldest are dropped beyond this

	// A source may get the password wrong loginBurst times in a row,
	// then once per loginEvery: about 180 guesses an hour, hopeless
	// against a random gokrazy password.
	loginBurst       = 5
	loginEvery       = 20 * time.Second
	maxLimitedSource = 1024 // sources tracked; the least recently seen are forgotten
)

type session struct {
	id       string
	created  time.Time
	lastSeen time.Time
	flash    []flashMsg // messages for the next page this session sees
}

type sessions struct {
	now func() time.Time

	mu sync.Mutex
	m  map[string]*session
}

func (ss *sessions) create() *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	if ss.m == nil {
		ss.m = map[string]*session{}
	}
	for len(ss.m) >= maxSessions {
		var oldest *session
		for _, s := range ss.m {
			if oldest == nil || s.lastSeen.Before(oldest.lastSeen) {
				oldest = s
			}
		}
		delete(ss.m, oldest.id)
	}
	s := &session{id: randomToken(), created: now, lastSeen: now}
	ss.m[s.id] = s
	return s
}

// get returns the live session with id, or nil.
func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil {
		return nil
	}
	now := ss.now()
	if now.Sub(s.lastSeen) > sessionIdle || now.Sub(s.created) > sessionLifetime {
		delete(ss.m, id)
		return nil
	}
	s.lastSeen = now
	return s
}

func (ss *sessions) delete(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// flashMsg is a message for the page after a redirect. Anchor is the
// section it belongs to (the one the redirect scrolls to), or "" for the
// top of the page.
type flashMsg struct {
	Anchor string
	Msg    string
}

func (ss *sessions) addFlash(s *session, msg flashMsg) {
	if s == nil {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(s.flash) < 8 {
		s.flash = append(s.flash, msg)
	}
}

func (ss *sessions) takeFlash(s *session) []flashMsg {
	if s == nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// loginLimiter is a token bucket per source address with bounded memory.
// Only failed attempts are charged, so a Prometheus scraper with the right
// password is never slowed down; a source whose bucket is empty is refused
// before its password is even looked at.
type loginLimiter struct {
	now func() time.Time

	mu    sync.Mutex
	cache lru.Cache[string, *rate.Limiter]
}

// wait returns how long src must wait before its next attempt, 0 if none.
func (l *loginLimiter) wait(src string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.cache.GetOk(src)
	if !ok {
		return 0
	}
	now := l.now()
	if lim.TokensAt(now) >= 1 {
		return 0
	}
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// fail charges src for a wrong password.
func (l *loginLimiter) fail(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cache.MaxEntries = maxLimitedSource
	lim, ok := l.cache.GetOk(src)
	if !ok {
		lim = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
		l.cache.Set(src, lim)
	}
	lim.AllowN(l.now(), 1)
}

// sourceKey is what the limiter counts by: the IPv4 address, or the /64
// of an IPv6 address, since one LAN host can pick any address in its /64.
func sourceKey(remote netip.Addr) string {
	if remote.Is4() {
		return remote.String()
	}
	p, _ := remote.Prefix(64)
	return p.String()
}

// remoteAddr parses r.RemoteAddr; an unparsable one is invalid.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// isPrivateSource says whether a request may reach the web UI at all: the
// listeners bind only private addresses, and this refuses anything that
// got through from elsewhere anyway (a port-forward set up by mistake).
// Private means what gokrazy means: loopback, RFC 1918, ULA, link-local
// and the tailnet range 100.64.0.0/10.
func isPrivateSource(a netip.Addr) bool {
	return a.IsValid() && ifaddr.IsInPrivateNet(a.AsSlice())
}

// passwordOK compares in constant time (over fixed-length hashes, so the
// length of the password does not leak either).
func (s *Server) passwordOK(pw string) bool {
	if s.o.Password == "" {
		return false
	}
	a := sha256.Sum256([]byte(pw))
	b := sha256.Sum256([]byte(s.o.Password))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// user is who made a request: a session, or Basic auth (session nil).
type user struct {
	session *session
}

// csrfID is the identity CSRF tokens are bound to.
func (u *user) csrfID() string {
	if u.session != nil {
		return "session:" + u.session.id
	}
	return "basic:" + basicUser
}

// authenticate returns the request's user, or nil after writing the
// answer for an unauthenticated request.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) *user {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if sess := s.sessions.get(c.Value); sess != nil {
			return &user{session: sess}
		}
	}
	src := sourceKey(remoteAddr(r))
	if name, pw, ok := r.BasicAuth(); ok {
		if d := s.limiter.wait(src); d > 0 {
			tooMany(w, d)
			return nil
		}
		if name == basicUser && s.passwordOK(pw) {
			return &user{}
		}
		s.limiter.fail(src)
		s.o.Logf("webui: wrong password (HTTP Basic auth) from %v", remoteAddr(r))
	}
	if r.Method == http.MethodGet && !wantsJSON(r) && r.Header.Get("Authorization") == "" {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return nil
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="homederp", charset="UTF-8"`)
	http.Error(w, "401 Unauthorized: log in at /login, or use HTTP Basic auth with user gokrazy and the gokrazy password", http.StatusUnauthorized)
	return nil
}

func tooMany(w http.ResponseWriter, d time.Duration) {
	secs := int(d.Seconds() + 0.999)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	http.Error(w, fmt.Sprintf("429 Too Many Requests: too many wrong passwords from your address; try again in %d seconds", secs), http.StatusTooManyRequests)
}

// loginView is the login page.
type loginView struct {
	Next  string
	Error string
	NoPW  bool   // the box has no password configured
	CSRF  string // token for the form
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, v loginView) {
	// The login form's CSRF token is bound to a random cookie, since
	// there is no session yet.
	nonce := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: nonce, Path: "/login", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	v.CSRF = s.csrfToken("login:"+nonce, "/login")
	v.NoPW = s.o.Password == ""
	s.render(w, r, status, "login", &page{Title: "Log in", Body: v})
}

func (s *Server) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		s.badRequest(w, r, "The login form could not be read: "+err.Error())
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	c, err := r.Cookie(loginCookie)
	if err != nil || !s.csrfValid(r.PostForm.Get("csrf"), "login:"+c.Value, "/login") {
		s.renderLogin(w, r, http.StatusForbidden, loginView{Next: next, Error: "The login form expired or came from another site. Please try again."})
		return
	}
	src := sourceKey(remoteAddr(r))
	if d := s.limiter.wait(src); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds()+0.999)))
		s.renderLogin(w, r, http.StatusTooManyRequests, loginView{Next: next,
			Error: fmt.Sprintf("Too many wrong passwords from your address. Wait %d seconds, then try again.", int(d.Seconds()+0.999))})
		return
	}
	if !s.passwordOK(r.PostForm.Get("password")) {
		s.limiter.fail(src)
		s.o.Logf("webui: wrong password (login form) from %v", remoteAddr(r))
		msg := "Wrong password. It is the gokrazy password of this box."
		if s.o.Password == "" {
			msg = "This box has no web UI password set, so nobody can log in; see the log."
		}
		s.renderLogin(w, r, http.StatusUnauthorized, loginView{Next: next, Error: msg})
		return
	}
	sess := s.sessions.create()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionLifetime.Seconds())})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logoutPost(w http.ResponseWriter, r *http.Request, u *user) {
	if u.session != nil {
		s.sessions.delete(u.session.id)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}
