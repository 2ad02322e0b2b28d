package testwait

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestForReturnsOnceTrue(t *testing.T) {
	n := 0
	took := For(t, 5*time.Second, "the third poll", func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 3 || took < 2*Interval {
		t.Errorf("For: %d polls in %v, want 3 polls and at least %v", n, took, 2*Interval)
	}
}

// fakeT records a Fatalf the way testing.T would stop the test.
type fakeT struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = strings.TrimSpace(fmt.Sprintf(format, args...))
	f.mu.Unlock()
	panic(f)
}

func TestForFailsWithTheLastError(t *testing.T) {
	ft := &fakeT{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != ft {
				t.Fatalf("For did not fail the test (recovered %v)", r)
			}
		}()
		For(ft, 200*time.Millisecond, "a state that never comes", func() error { return errors.New("still off") })
	}()
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("For with a 200ms limit took %v", el)
	}
	if want := "a state that never comes: not within 200ms: still off"; ft.msg != want {
		t.Errorf("failure message: got %q, want %q", ft.msg, want)
	}
}

func TestUntil(t *testing.T) {
	n := 0
	took := Until(t, 5*time.Second, "the second poll", func() bool { n++; return n == 2 })
	if n != 2 || took < Interval {
		t.Errorf("Until: %d polls in %v, want 2 and at least %v", n, took, Interval)
	}
}
