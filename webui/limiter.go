package webui

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"tailscale.com/util/lru"
)

const (
	// A source may get the password wrong loginBurst times in a row,
	// then once per loginEvery: about 180 guesses an hour, hopeless
	// against a random gokrazy password.
	loginBurst       = 5
	loginEvery       = 20 * time.Second
	maxLimitedSource = 1024 // sources tracked; the least recently seen are forgotten
)

// loginLimiter is a token bucket per key with bounded memory. Only failed
// attempts are charged, so a Prometheus scraper with the right password is
// never slowed down; a key whose bucket is empty is refused before its
// password is even looked at.
//
// A login is charged to its source address and to its browser (the login
// form's cookie), so a browser hopping between IPv6 privacy addresses is
// still slowed down. The address is the whole address, IPv6 too: counting
// by /64 would let one device on the LAN lock every other IPv6 device of
// the LAN out, right password or not. Requests with a valid session are
// never limited (see authenticate and loginPost).
type loginLimiter struct {
	now func() time.Time

	mu    sync.Mutex
	cache lru.Cache[string, *rate.Limiter]
}

// wait returns how long the attempt must wait, 0 if none: the longest
// wait of its keys.
func (l *loginLimiter) wait(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	now := l.now()
	for _, k := range keys {
		lim, ok := l.cache.GetOk(k)
		if !ok || lim.TokensAt(now) >= 1 {
			continue
		}
		r := lim.ReserveN(now, 1)
		longest = max(longest, r.DelayFrom(now))
		r.CancelAt(now)
	}
	return longest
}

// fail charges each key for a wrong password.
func (l *loginLimiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cache.MaxEntries = maxLimitedSource
	for _, k := range keys {
		lim, ok := l.cache.GetOk(k)
		if !ok {
			lim = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
			l.cache.Set(k, lim)
		}
		lim.AllowN(l.now(), 1)
	}
}

// sourceKey is the limiter's key for a source address.
func sourceKey(remote netip.Addr) string { return "addr:" + remote.WithZone("").String() }

// browserKey is the limiter's key for a login form's cookie.
func browserKey(nonce string) string { return "login:" + nonce }
