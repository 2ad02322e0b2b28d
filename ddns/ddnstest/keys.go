package ddnstest

import (
	"slices"
	"sync"
	"time"
)

// Key is an API key a cloud provider's fake accepts (a Tencent Cloud
// SecretId and SecretKey, an Alibaba Cloud AccessKey), with what the
// console's access management (CAM, RAM) lets its user do.
type Key struct {
	Disabled bool // disabled or deleted in the console
	// ReadOnly keys belong to a user with read access only to DNS: the
	// fake refuses their writes with the vendor's permission error.
	ReadOnly bool
	// Domains limits the key to these domains; nil = every domain.
	Domains []string
}

// Sees reports whether the key may see domain (e.g. "example.com").
func (k Key) Sees(domain string) bool { return k.Domains == nil || slices.Contains(k.Domains, domain) }

// Keys are the keys a fake accepts, by ID, each with its secret and its
// rate-limit window. It is safe for concurrent use.
type Keys struct {
	mu   sync.Mutex
	keys map[string]*keyState
}

type keyState struct {
	Key
	secret string
	window Window
}

// Add makes the fake accept the key id with secret.
func (ks *Keys) Add(id, secret string, k Key) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.keys == nil {
		ks.keys = map[string]*keyState{}
	}
	ks.keys[id] = &keyState{Key: k, secret: secret}
}

// Disable disables the key id, as the user would in the console.
func (ks *Keys) Disable(id string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if k := ks.keys[id]; k != nil {
		k.Disabled = true
	}
}

// Get returns the key id and its secret; ok is false if there is none.
func (ks *Keys) Get(id string) (k Key, secret string, ok bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	s := ks.keys[id]
	if s == nil {
		return Key{}, "", false
	}
	return s.Key, s.secret, true
}

// Count counts a request of the key id at now and returns how many it
// made in the span up to now, this one included.
func (ks *Keys) Count(id string, now time.Time, span time.Duration) int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if s := ks.keys[id]; s != nil {
		return s.window.Add(now, span)
	}
	return 0
}

// Window counts requests in a sliding time window, as a provider's rate
// limit does. Its owner's lock guards it.
type Window struct{ times []time.Time }

// Add counts a request at now and returns how many there were in the
// span up to now, this one included.
func (w *Window) Add(now time.Time, span time.Duration) int {
	kept := w.times[:0]
	for _, t := range w.times {
		if now.Sub(t) < span {
			kept = append(kept, t)
		}
	}
	w.times = append(kept, now)
	return len(w.times)
}
