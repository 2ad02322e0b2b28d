package acmedns

import (
	"context"
	"fmt"
	"time"
)

// state is what the Manager knows about its progress; guarded by mu.
type state struct {
	trusted   bool // a valid trusted certificate was served at the last check
	clockWait bool // waiting for a plausible clock

	attempts    int       // attempts to get the first certificate
	lastAttempt time.Time // start of the latest first-certificate attempt
	nextAttempt time.Time // zero while an attempt runs or none is due
	lastErr     string    // why the latest first-certificate attempt failed
	lastErrAt   time.Time

	renewAttempts int       // renewals certmagic started
	renewErr      string    // why the latest renewal failed; "" after a success
	renewErrAt    time.Time // when it failed

	obtaining     time.Time     // start of the ACME order in progress; zero if none
	obtainedAt    time.Time     // when this process last got a certificate
	issueDuration time.Duration // how long that took, from order to certificate
	issued        int           // certificates this process got, renewals included
}

// Status is what the web UI can show about ACME.
type Status struct {
	Hostname string // e.g. "derp.example.com"
	CA       string // the ACME directory, e.g. "https://acme-v02.api.letsencrypt.org/directory"

	// Trusted says a valid certificate from the CA is being served;
	// otherwise the fallback (self-signed) one is.
	Trusted  bool
	NotAfter time.Time // expiry of the CA's certificate in use, if any
	Issuer   string    // its issuer, e.g. "Let's Encrypt"

	WaitingForClock bool      // nothing is asked of the CA until the clock is plausible
	Attempts        int       // attempts to get the first certificate
	LastAttempt     time.Time // start of the latest of them
	LastError       string    // why the latest attempt (first or renewal) failed; "" if it did not
	LastErrorAt     time.Time // when it failed
	NextAttempt     time.Time // when the first-certificate loop tries again; zero if not waiting
	RenewAttempts   int       // renewal attempts since start

	Issued        int           // certificates got since start, renewals included
	ObtainedAt    time.Time     // when the latest one arrived
	IssueDuration time.Duration // how long getting it took, e.g. 4s
}

// Status returns a snapshot of the Manager's state.
func (m *Manager) Status() Status {
	c := m.trusted()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{
		Hostname:        m.host,
		CA:              m.caURL,
		Trusted:         c != nil,
		WaitingForClock: m.st.clockWait,
		Attempts:        m.st.attempts,
		LastAttempt:     m.st.lastAttempt,
		NextAttempt:     m.st.nextAttempt,
		RenewAttempts:   m.st.renewAttempts,
		Issued:          m.st.issued,
		ObtainedAt:      m.st.obtainedAt,
		IssueDuration:   m.st.issueDuration,
		LastError:       m.st.lastErr,
		LastErrorAt:     m.st.lastErrAt,
	}
	if m.st.renewErr != "" && m.st.renewErrAt.After(st.LastErrorAt) {
		st.LastError, st.LastErrorAt = m.st.renewErr, m.st.renewErrAt
	}
	if c != nil {
		st.NotAfter = c.Leaf.NotAfter
		st.Issuer = issuerName(c.Leaf)
	}
	return st
}

// setError records a failed first-certificate attempt.
func (m *Manager) setError(err error, next time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.lastErr = err.Error()
	m.st.lastErrAt = m.cfg.Now()
	m.st.nextAttempt = next
}

// onEvent follows certmagic's progress, for the status. certmagic calls
// it synchronously: it must be quick.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtaining":
		if !clockPlausible(m.cfg.Now()) {
			return errClock
		}
		m.mu.Lock()
		m.st.obtaining = time.Now()
		if renewal {
			m.st.renewAttempts++
		}
		m.mu.Unlock()
	case "cert_obtained":
		m.mu.Lock()
		now := time.Now()
		if !m.st.obtaining.IsZero() {
			m.st.issueDuration = now.Sub(m.st.obtaining)
		}
		m.st.obtaining = time.Time{}
		m.st.obtainedAt = now
		m.st.issued++
		if renewal {
			m.st.renewErr, m.st.renewErrAt = "", time.Time{}
		}
		d := m.st.issueDuration
		m.mu.Unlock()
		what := "got"
		if renewal {
			what = "renewed"
		}
		m.logf("acme: %s the certificate for %s from %s in %v", what, m.host, m.caURL, d.Round(time.Millisecond))
	case "cert_failed":
		m.mu.Lock()
		m.st.obtaining = time.Time{}
		if renewal {
			m.st.renewErr = fmt.Sprint(data["error"])
			m.st.renewErrAt = m.cfg.Now()
		}
		m.mu.Unlock()
	case "cached_managed_cert":
		// A certificate (the first one, or one loaded from the disk) is
		// now in certmagic's cache.
		m.checkServed()
	}
	return nil
}
