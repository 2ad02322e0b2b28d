package webui

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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
// Both go through the login limiter. Sessions survive restarts (see
// sessions.go). A browser whose session has ended is sent to the login
// form, never to the browser's own Basic-auth dialog, and a form it posted
// comes back after the login with what was typed (see resume.go).

const (
	sessionCookie = "homederp_session"
	loginCookie   = "homederp_login" // binds the login form's CSRF token
	basicUser     = "gokrazy"
)

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
		return "session:" + u.session.key
	}
	return "basic:" + basicUser
}

// sessionUser returns the user of the request's session cookie, or nil.
func (s *Server) sessionUser(r *http.Request) *user {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if sess := s.sessions.get(c.Value); sess != nil {
			return &user{session: sess}
		}
	}
	return nil
}

// fromBrowser tells a person's browser from a script: scripts ask for
// JSON or send credentials with the request.
func fromBrowser(r *http.Request) bool {
	return !wantsJSON(r) && r.Header.Get("Authorization") == ""
}

// authenticate returns the request's user, or nil after writing the
// answer for an unauthenticated request.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) *user {
	if u := s.sessionUser(r); u != nil {
		return u
	}
	if name, pw, ok := r.BasicAuth(); ok {
		src := sourceKey(remoteAddr(r))
		if d := s.limiter.wait(src); d > 0 {
			tooMany(w, s.tr(r), d)
			return nil
		}
		if name == basicUser && s.passwordOK(pw) {
			return &user{}
		}
		s.limiter.fail(src)
		s.o.Logf("webui: wrong password (HTTP Basic auth) from %v", remoteAddr(r))
	}
	switch {
	case fromBrowser(r) && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	case fromBrowser(r):
		s.loginToResume(w, r)
	default:
		w.Header().Set("WWW-Authenticate", `Basic realm="homederp", charset="UTF-8"`)
		http.Error(w, s.tr(r).S("http.unauthorized"), http.StatusUnauthorized)
	}
	return nil
}

func tooMany(w http.ResponseWriter, t *tr, d time.Duration) {
	secs := int(d.Seconds() + 0.999)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	http.Error(w, t.S("http.too_many", "Seconds", secs), http.StatusTooManyRequests)
}

// loginView is the login page.
type loginView struct {
	Next   string
	Error  string
	Notice string      // why the login page is shown instead of a form's answer
	Draft  *loginDraft // a form to bring back after the login
	NoPW   bool        // the box has no password configured
	CSRF   string      // token for the form
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, v loginView) {
	// The login form's CSRF token is bound to a random cookie, since
	// there is no session yet. A browser keeps its cookie for an hour,
	// which also lets the limiter count its attempts.
	nonce := loginNonce(r)
	if nonce == "" {
		nonce = randomToken()
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: nonce, Path: "/login", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	v.CSRF = s.csrfToken("login:"+nonce, "/login")
	v.NoPW = s.o.Password == ""
	s.render(w, r, status, "login", &page{Title: s.tr(r).S("login.title"), Body: v})
}

// loginNonce returns the login cookie's value if it is one this server
// could have made, or "".
func loginNonce(r *http.Request) string {
	c, err := r.Cookie(loginCookie)
	if err != nil || len(c.Value) != len(randomToken()) || strings.Trim(c.Value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return ""
	}
	return c.Value
}

func (s *Server) loginPost(w http.ResponseWriter, r *http.Request) {
	t := s.tr(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxDraft+16<<10)
	if err := r.ParseForm(); err != nil {
		s.badRequest(w, r, t.S("login.unreadable", "Err", err.Error()))
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	d := draftFromLogin(r.PostForm)
	again := func(status int, msg string) {
		s.renderLogin(w, r, status, loginView{Next: next, Error: msg, Draft: d.login()})
	}
	nonce := loginNonce(r)
	if nonce == "" || !s.csrfValid(r.PostForm.Get("csrf"), "login:"+nonce, "/login") {
		again(http.StatusForbidden, t.S("login.expired"))
		return
	}
	// A browser that is logged in already is never held up.
	limited := s.sessionUser(r) == nil
	keys := []string{sourceKey(remoteAddr(r)), browserKey(nonce)}
	if d := s.limiter.wait(keys...); limited && d > 0 {
		secs := int(d.Seconds() + 0.999)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		again(http.StatusTooManyRequests, t.S("login.too_many", "Seconds", secs))
		return
	}
	if !s.passwordOK(r.PostForm.Get("password")) {
		if limited {
			s.limiter.fail(keys...)
		}
		s.o.Logf("webui: wrong password (login form) from %v", remoteAddr(r))
		msg := t.S("login.wrong")
		if s.o.Password == "" {
			msg = t.S("login.no_password")
		}
		again(http.StatusUnauthorized, msg)
		return
	}
	sess, cookie := s.sessions.create()
	if d != nil {
		s.sessions.setDraft(sess, d)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: cookie, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionLifetime.Seconds())})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logoutPost(w http.ResponseWriter, r *http.Request, u *user) {
	if u.session != nil {
		s.sessions.delete(u.session)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site: only a path of this
// UI (with query and fragment) passes, anything else means "/". A browser
// reads "//host", "/\host" and a path with a tab or newline in it
// ("/<TAB>/host") as another host, so those fail, as does anything with a
// scheme, a host or user info.
func safeNext(next string) string {
	if strings.ContainsFunc(next, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' }) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(u.Path, "/login") {
		return "/"
	}
	return next
}
