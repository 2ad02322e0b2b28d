package acmedns

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
)

// DefaultRetry are the waits after each failed attempt to get the first
// certificate; the last one repeats. After the first hour a box that
// cannot succeed asks at most every 6 hours, four times a day: far below
// Let's Encrypt's limits (5 failed validations per hostname and hour, 300
// new orders per 3 hours), and from the second attempt on certmagic proves
// the challenge against the staging CA first, which keeps failures off the
// production CA's books altogether. Each wait gets up to 10% random extra,
// so that boxes that failed together (a CA outage) do not return together.
var DefaultRetry = []time.Duration{
	time.Minute,
	5 * time.Minute,
	15 * time.Minute,
	30 * time.Minute,
	time.Hour,
	2 * time.Hour,
	4 * time.Hour,
	6 * time.Hour,
}

// maxRateLimitWait caps how long a CA's "retry after" can park the box.
const maxRateLimitWait = 7 * 24 * time.Hour

// retryWait is the wait after the failed attempt number n (0-based). A
// rate-limit answer from the CA waits at least until the time the CA names
// ("retry after 2025-01-02 03:04:05 UTC", Let's Encrypt's wording), or
// else the longest wait of the schedule.
func retryWait(schedule []time.Duration, n int, err error, now time.Time) time.Duration {
	if len(schedule) == 0 {
		schedule = DefaultRetry
	}
	wait := schedule[min(n, len(schedule)-1)]
	if until, limited := rateLimited(err); limited {
		longest := schedule[len(schedule)-1]
		wait = max(wait, longest)
		if !until.IsZero() {
			wait = max(wait, min(until.Sub(now), maxRateLimitWait))
		}
	}
	return wait + time.Duration(rand.Int64N(int64(wait)/10+1))
}

var retryAfterRE = regexp.MustCompile(`retry after (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC`)

// rateLimited reports whether err is the CA's rate-limit problem, and
// the time it says to retry after, if it says.
func rateLimited(err error) (until time.Time, ok bool) {
	var p acme.Problem
	if !errors.As(err, &p) || p.Type != acme.ProblemTypeRateLimited {
		return time.Time{}, false
	}
	if m := retryAfterRE.FindStringSubmatch(p.Detail); m != nil {
		if t, err := time.Parse(time.DateTime, m[1]); err == nil {
			return t, true
		}
	}
	return time.Time{}, true
}

// plausibleSince is a time before which the clock is surely wrong: it is
// before this code was written. A board without a real-time clock boots
// in 1970 and keeps that time until NTP answers.
var plausibleSince = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// clockPlausible reports whether now can be trusted for certificate work.
func clockPlausible(now time.Time) bool { return now.After(plausibleSince) }

// clockPoll is how often the clock is looked at again while implausible.
var clockPoll = 5 * time.Second

// waitForClock waits until the clock is plausible, saying so in the
// status meanwhile. It reports false if the Manager was closed.
func (m *Manager) waitForClock() bool {
	for !clockPlausible(m.cfg.Now()) {
		m.mu.Lock()
		m.st.clockWait = true
		m.mu.Unlock()
		t := time.NewTimer(clockPoll)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
	m.mu.Lock()
	m.st.clockWait = false
	m.mu.Unlock()
	return true
}

// errClock aborts a renewal that certmagic's maintenance starts while the
// clock is implausible.
var errClock = errors.New("waiting for a synchronized clock before talking to the ACME CA")

// DirectoryURL returns the ACME directory for a configured CA choice:
// "production" or "" and "staging" (Let's Encrypt), or an https:// URL.
func DirectoryURL(ca string) (string, error) {
	switch ca = strings.TrimSpace(ca); {
	case ca == "" || ca == "production":
		return certmagic.LetsEncryptProductionCA, nil
	case ca == "staging":
		return certmagic.LetsEncryptStagingCA, nil
	case strings.HasPrefix(ca, "https://") && len(ca) > len("https://"):
		return ca, nil
	}
	return "", fmt.Errorf("acmedns: %q is neither \"production\", \"staging\" nor an https:// ACME directory URL", ca)
}
