package webui

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/homederp/homederp/internal/statefile"
	"tailscale.com/types/logger"
)

// Sessions are what the login form hands out: a random cookie, looked up
// here. They survive a restart of the appliance (an update, a power cut,
// a crash), so a person in the middle of the setup is not logged out and
// a form they had open still posts: the sessions and the key the CSRF
// tokens are made with live in a 0600 state file (SessionsFile). The file
// holds only SHA-256 hashes of the cookies, so reading it does not yield
// a way in. Flash messages and drafts stay in memory.

// SessionsFile is the web UI's state file inside Options.StateDir.
const SessionsFile = "webui-sessions.json"

const (
	sessionIdle     = 24 * time.Hour
	sessionLifetime = 7 * 24 * time.Hour
	maxSessions     = 64 // oldest are dropped beyond this

	// sessionTouchEvery is how stale the stored last-seen time of a
	// session may get before it is written again: an open status page
	// must not rewrite the file every few seconds, and after a restart
	// the idle timeout is off by at most this much.
	sessionTouchEvery = time.Hour
)

type session struct {
	key      string // hex SHA-256 of the cookie value
	created  time.Time
	lastSeen time.Time
	stored   time.Time  // lastSeen as last written to the file
	flash    []flashMsg // messages for the next page this session sees
	draft    *draft     // a form to show again with what was typed
}

type sessions struct {
	now  func() time.Time
	logf logger.Logf
	path string // the state file; "" keeps everything in memory

	mu      sync.Mutex
	m       map[string]*session // by key
	csrfKey string

	writeMu sync.Mutex // orders writes of the file
}

// sessionsState is the state file's JSON.
type sessionsState struct {
	Version  int             `json:"version"`
	CSRFKey  string          `json:"csrf_key"` // hex, 32 random bytes
	Sessions []storedSession `json:"sessions"`
}

type storedSession struct {
	Key      string    `json:"key"` // hex SHA-256 of the cookie
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
}

// open loads the state file, or starts afresh with a new CSRF key. A file
// that cannot be read is replaced: losing it only logs people out.
func (ss *sessions) open() error {
	ss.m = map[string]*session{}
	if ss.path == "" {
		ss.csrfKey = randomHex(32)
		return nil
	}
	if err := statefile.RemoveTemp(ss.path); err != nil {
		return err
	}
	b, err := os.ReadFile(ss.path)
	var st sessionsState
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("reading the web UI sessions: %w", err)
	default:
		if err := json.Unmarshal(b, &st); err != nil || len(st.CSRFKey) != 64 {
			ss.logf("webui: %s is unreadable (%v); starting with no sessions, so everyone logs in again", ss.path, err)
			st = sessionsState{}
		}
	}
	ss.csrfKey = st.CSRFKey
	if ss.csrfKey == "" {
		ss.csrfKey = randomHex(32)
	}
	now := ss.now()
	for _, s := range st.Sessions {
		sess := &session{key: s.Key, created: s.Created, lastSeen: s.LastSeen, stored: s.LastSeen}
		if !sess.expired(now) && len(ss.m) < maxSessions {
			ss.m[s.Key] = sess
		}
	}
	return ss.save()
}

func (s *session) expired(now time.Time) bool {
	return now.Sub(s.lastSeen) > sessionIdle || now.Sub(s.created) > sessionLifetime
}

// save writes the sessions to the state file.
func (ss *sessions) save() error {
	if ss.path == "" {
		return nil
	}
	ss.writeMu.Lock()
	defer ss.writeMu.Unlock()
	ss.mu.Lock()
	st := sessionsState{Version: 1, CSRFKey: ss.csrfKey, Sessions: []storedSession{}}
	for _, s := range ss.m {
		st.Sessions = append(st.Sessions, storedSession{s.key, s.created, s.lastSeen})
		s.stored = s.lastSeen
	}
	ss.mu.Unlock()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := statefile.Write(ss.path, append(b, '\n'), 0600); err != nil {
		return fmt.Errorf("saving the web UI sessions: %w", err)
	}
	return nil
}

// saveOrLog saves, logging a failure: the session still works until the
// next restart.
func (ss *sessions) saveOrLog() {
	if err := ss.save(); err != nil {
		ss.logf("webui: %v", err)
	}
}

func sessionKey(cookie string) string {
	h := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(h[:])
}

// create starts a session and returns it with the cookie value for it.
func (ss *sessions) create() (*session, string) {
	cookie := randomToken()
	ss.mu.Lock()
	now := ss.now()
	for len(ss.m) >= maxSessions {
		var oldest *session
		for _, s := range ss.m {
			if oldest == nil || s.lastSeen.Before(oldest.lastSeen) {
				oldest = s
			}
		}
		delete(ss.m, oldest.key)
	}
	s := &session{key: sessionKey(cookie), created: now, lastSeen: now}
	ss.m[s.key] = s
	ss.mu.Unlock()
	ss.saveOrLog()
	return s, cookie
}

// get returns the live session of a cookie value, or nil.
func (ss *sessions) get(cookie string) *session {
	key := sessionKey(cookie)
	ss.mu.Lock()
	s := ss.m[key]
	if s == nil {
		ss.mu.Unlock()
		return nil
	}
	now := ss.now()
	if s.expired(now) {
		delete(ss.m, key)
		ss.mu.Unlock()
		ss.saveOrLog()
		return nil
	}
	s.lastSeen = now
	stale := now.Sub(s.stored) > sessionTouchEvery
	ss.mu.Unlock()
	if stale {
		ss.saveOrLog()
	}
	return s
}

func (ss *sessions) delete(s *session) {
	ss.mu.Lock()
	delete(ss.m, s.key)
	ss.mu.Unlock()
	ss.saveOrLog()
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

// draft is a form that was posted when its session had ended: what was
// typed (secrets left out), to be shown again after the login.
type draft struct {
	Page   string     // the page the form is on, e.g. "/setup"
	Action string     // the form's action, e.g. "/setup/ports"
	Values url.Values // e.g. relay.derp_port=4444
}

func (ss *sessions) setDraft(s *session, d *draft) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.draft = d
}

// takeDraft returns the session's draft of a form on page, once.
func (ss *sessions) takeDraft(s *session, page string) *draft {
	if s == nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	d := s.draft
	if d == nil || d.Page != page {
		return nil
	}
	s.draft = nil
	return d
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
