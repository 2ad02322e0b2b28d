package ddnstest

import (
	"testing"
	"time"
)

// TestKeys: a key is found with its secret until disabled, sees only its
// domains, and counts its requests in a sliding window.
func TestKeys(t *testing.T) {
	var ks Keys
	ks.Add("AKID1", "secret", Key{Domains: []string{"example.com"}})
	if k, secret, ok := ks.Get("AKID1"); !ok || secret != "secret" || k.Disabled || !k.Sees("example.com") || k.Sees("example.org") {
		t.Errorf("Get(AKID1): got %+v, %q, %v", k, secret, ok)
	}
	if _, _, ok := ks.Get("AKID2"); ok {
		t.Error("Get(AKID2): found a key never added")
	}
	ks.Disable("AKID1")
	if k, _, _ := ks.Get("AKID1"); !k.Disabled {
		t.Error("Disable: the key is still enabled")
	}
	if !(Key{}).Sees("example.org") {
		t.Error("a key without Domains sees no domain, want every one")
	}

	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		after time.Duration
		want  int
	}{{0, 1}, {500 * time.Millisecond, 2}, {999 * time.Millisecond, 3}, {1200 * time.Millisecond, 3}, {3 * time.Second, 1}} {
		if got := ks.Count("AKID1", t0.Add(tt.after), time.Second); got != tt.want {
			t.Errorf("Count at +%v: got %d, want %d in the last second", tt.after, got, tt.want)
		}
	}
	if got := ks.Count("AKID2", t0, time.Second); got != 0 {
		t.Errorf("Count of an unknown key: got %d, want 0", got)
	}
}
