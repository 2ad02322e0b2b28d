package acmedns

import (
	"context"
	"time"

	"github.com/caddyserver/certmagic"
)

// The Manager's one goroutine: get the first certificate (retrying on the
// Manager's own schedule), hand renewals to certmagic's maintenance, and
// tell the caller whenever the served kind (trusted or the fallback)
// changes.

// run gets the first certificate, then watches the served kind.
func (m *Manager) run() {
	defer close(m.done)
	if !m.waitForClock() {
		return
	}
	if m.managed() {
		// A stored certificate was loaded: certmagic's maintenance renews
		// it. If it is already due, start that now rather than at the
		// first maintenance tick.
		m.renewIfDue()
	} else if !m.obtain() {
		return
	}
	m.watch()
}

// managed reports whether certmagic holds a certificate for the hostname
// (valid or not) and so maintains it.
func (m *Manager) managed() bool {
	return len(m.cache.AllMatchingCertificates(m.host)) > 0
}

func (m *Manager) renewIfDue() {
	for _, c := range m.cache.AllMatchingCertificates(m.host) {
		if c.NeedsRenewal(m.magic) {
			if err := m.cache.RenewManagedCertificates(m.ctx); err != nil {
				m.logf("acme: starting the renewal: %v", err)
			}
			return
		}
	}
}

// obtain tries to get the first certificate until it succeeds or the
// Manager is closed, waiting cfg.Retry between attempts. It reports
// whether it succeeded.
func (m *Manager) obtain() bool {
	// certmagic counts attempts in the context: from the second one on,
	// with the production CA, it first proves the challenge against
	// Let's Encrypt's staging CA, so that a broken DNS setup uses up the
	// staging CA's failed-validation limit, not production's.
	var attempts int
	ctx := context.WithValue(m.ctx, certmagic.AttemptsCtxKey, &attempts)
	for {
		m.mu.Lock()
		m.st.attempts++
		m.st.lastAttempt = m.cfg.Now()
		m.st.nextAttempt = time.Time{}
		m.mu.Unlock()
		err := m.first.ManageSync(ctx, []string{m.host})
		attempts++
		if err == nil {
			m.mu.Lock()
			m.st.lastErr, m.st.lastErrAt = "", time.Time{}
			m.mu.Unlock()
			m.checkServed()
			return true
		}
		if m.ctx.Err() != nil {
			return false
		}
		wait := retryWait(m.cfg.Retry, attempts-1, err, m.cfg.Now())
		next := m.cfg.Now().Add(wait)
		m.setError(err, next)
		m.logf("acme: getting a certificate for %s failed (attempt %d): %v; next attempt at %s", m.host, attempts, err, next.UTC().Format(time.RFC3339))
		t := time.NewTimer(wait)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// watch notices a trusted certificate expiring (a renewal that kept
// failing) and the arrival of renewed ones, for OnChange.
func (m *Manager) watch() {
	t := time.NewTicker(m.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.checkServed()
		}
	}
}

// checkServed calls OnChange (through the notifier) when the served kind
// changed since the last check.
func (m *Manager) checkServed() {
	trusted := m.trusted() != nil
	m.mu.Lock()
	changed := trusted != m.st.trusted
	m.st.trusted = trusted
	m.mu.Unlock()
	if changed {
		if trusted {
			m.logf("acme: serving the trusted certificate for %s", m.host)
		} else {
			m.logf("acme: no valid trusted certificate for %s; serving the self-signed one", m.host)
		}
		m.notify()
	}
}

func (m *Manager) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// notifier calls OnChange outside any lock of the Manager and of its
// caller: OnChange typically re-renders the DERP map, which asks the
// relay, which asks GetCertificate.
func (m *Manager) notifier() {
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.changed:
			if m.cfg.OnChange != nil {
				m.cfg.OnChange()
			}
		}
	}
}

// quietIssuer is the ACME issuer for the first certificate. The loop uses
// certmagic's "interactive" obtain, the one without certmagic's own
// month-long retry loop (the Manager retries on its own schedule); but
// interactive also means certmagic would ask for an e-mail address on
// stdin when none is configured. quietIssuer answers the pre-check as
// non-interactive, which never prompts.
type quietIssuer struct{ *certmagic.ACMEIssuer }

func (q quietIssuer) PreCheck(ctx context.Context, names []string, _ bool) error {
	return q.ACMEIssuer.PreCheck(ctx, names, false)
}
