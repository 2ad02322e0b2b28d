// Package testwait is the one polling helper for tests that wait for a
// state to be reached: a relay serving the new certificate, a record
// updated, a status saying so. Every wait is bounded in time and in the
// number of polls, and its failure says what was awaited and what was
// seen last.
package testwait

import (
	"errors"
	"testing"
	"time"
)

// Interval is how often For polls.
const Interval = 50 * time.Millisecond

// For calls cond every Interval until it returns nil and returns how long
// that took. If cond still returns an error after limit (or after the
// number of polls limit allows, should the clock be slow), For fails t
// with what was awaited and cond's last error.
func For(t testing.TB, limit time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	maxPolls := int(limit/Interval) + 10
	for i := 0; ; i++ {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit || i >= maxPolls {
			t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
		time.Sleep(Interval)
	}
}

// Until is For for a yes-or-no condition.
func Until(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return For(t, limit, what, func() error {
		if !cond() {
			return errNotYet
		}
		return nil
	})
}

var errNotYet = errors.New("not yet")
