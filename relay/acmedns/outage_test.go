package acmedns

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/cloudflaretest"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay"
	"github.com/mholt/acmez/v3/acme"
)

type errString string

func (e errString) Error() string { return string(e) }

type atomicTime struct{ v atomic.Pointer[time.Time] }

func (a *atomicTime) Store(t time.Time) { a.v.Store(&t) }
func (a *atomicTime) Load() time.Time   { return *a.v.Load() }

func selfSigned(t testing.TB, dir, host string) relay.StaticCert {
	t.Helper()
	ss, err := relay.SelfSigned(filepath.Join(dir, "certs"), host, time.Now(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// failing waits until m's first attempt failed and returns CertInfo's
// explanation.
func failing(t *testing.T, m *Manager) string {
	t.Helper()
	testwait.For(t, 30*time.Second, "a failed attempt in the status", func() error {
		if st := m.Status(); st.Attempts == 0 || st.LastError == "" {
			return errors.New("no failed attempt yet")
		}
		return nil
	})
	return m.CertInfo().Error
}

// observe watches m for 3 s and checks that it kept retrying, but
// within the test schedule of 300 ms, 600 ms, 1.2 s, 1.2 s, ... between
// attempts: even if attempts took no time, a 3 s window holds at most 4
// attempt starts (say at 0, 0.3, 0.9 and 2.1 s).
func observe(t *testing.T, m *Manager) (attempts int) {
	t.Helper()
	const window, most = 3 * time.Second, 4
	before := m.Status().Attempts
	time.Sleep(window) // a measurement window, not a synchronisation
	attempts = m.Status().Attempts - before
	if attempts < 1 || attempts > most {
		t.Errorf("%d attempts in %v; want 1 to %d (bounded backoff)", attempts, window, most)
	}
	return attempts
}

// TestOutagesRFC2136: with the CA down, or the DNS server unreachable,
// the self-signed certificate keeps serving (pinned), the status says
// why, attempts follow the bounded backoff, and a DNS failure never asks
// the CA to validate anything (no failed validations on its books).
func TestOutagesRFC2136(t *testing.T) {
	env := rfc2136Env(t, "down.homederp.test", 0)

	t.Run("CA down", func(t *testing.T) {
		dir := t.TempDir()
		fallback := selfSigned(t, dir, env.host)
		env.pebble.SetDown(true)
		m, err := Start(env.config(t, dir, fallback, nil))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		tr := startRelay(t, dir, env.host, m)
		msg := failing(t, m)
		for _, want := range []string{"no trusted certificate yet: attempt", "down for maintenance", "next attempt at", "serving the self-signed certificate meanwhile"} {
			if !strings.Contains(msg, want) {
				t.Errorf("CertInfo: %q; want it to contain %q", msg, want)
			}
		}
		st := tr.srv.Status()
		if st.CertError != msg || !st.CertPinned {
			t.Errorf("relay status: error %q, pinned %v; want CertInfo's explanation and the pin", st.CertError, st.CertPinned)
		}
		if got, want := st.Msgs[msg].ID, "relaystate.acme_attempt_failed"; got != want {
			t.Errorf("the sentence of the certificate error: got %q, want %q", got, want)
		}
		if !bytes.Equal(tr.srv.PinnedCert(), fallback.Cert.Certificate[0]) {
			t.Error("not serving the self-signed certificate")
		}
		mustConnect(t, tr.region(), nil)
		reqs := env.pebble.Requests()
		n := observe(t, m)
		reqs = env.pebble.Requests() - reqs
		t.Logf("CA down: %d attempts and %d HTTP requests to the CA in 3s", n, reqs)
		if reqs > int64(n+1)*8 {
			t.Errorf("%d requests to the CA for %d attempts; want at most 8 per attempt", reqs, n+1)
		}

		env.pebble.SetDown(false)
		testwait.For(t, 30*time.Second, "a trusted certificate once the CA is back", func() error {
			if !m.Status().Trusted {
				return errString(m.CertInfo().Error)
			}
			return nil
		})
		if st := tr.srv.Status(); st.CertError != "" || st.CertPinned {
			t.Errorf("relay status after recovery: error %q, pinned %v", st.CertError, st.CertPinned)
		}
	})

	t.Run("DNS server unreachable", func(t *testing.T) {
		dir := t.TempDir()
		host := "derp2.down.homederp.test"
		fallback := selfSigned(t, dir, host)
		down := closedAddr(t)
		cfg := env.config(t, dir, fallback, nil)
		cfg.Hostname = host
		cfg.DNS = &rfc2136.Provider{Server: down, KeyName: "k.", KeyAlgorithm: "hmac-sha256.", Secret: "c2VjcmV0", Timeout: time.Second}
		cfg.Resolvers = []string{down}
		chals := env.pebble.ChallengeRequests()
		m, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		tr := startRelay(t, dir, host, m)
		msg := failing(t, m)
		for _, want := range []string{"no trusted certificate yet: attempt", "_acme-challenge." + host, "next attempt at", "serving the self-signed certificate meanwhile"} {
			if !strings.Contains(msg, want) {
				t.Errorf("CertInfo: %q; want it to contain %q", msg, want)
			}
		}
		if !tr.srv.Status().CertPinned {
			t.Error("not serving the pinned self-signed certificate")
		}
		n := observe(t, m)
		t.Logf("DNS down: %d attempts in 3s", n)
		if got := env.pebble.ChallengeRequests() - chals; got != 0 {
			t.Errorf("%d challenge requests at the CA while DNS was down; want none", got)
		}
	})
}

// TestOutagesCloudflare: the Cloudflare API down, then its DNS stale (the
// TXT record never shows), then all well.
func TestOutagesCloudflare(t *testing.T) {
	env, fake := cloudflareEnv(t, "cfdown.homederp.test", 0)
	dir := t.TempDir()
	fallback := selfSigned(t, dir, env.host)
	cfg := env.config(t, dir, fallback, nil)
	cfg.PropagationTimeout = 3 * time.Second
	fake.SetDown(&cloudflaretest.Fault{Status: 503})
	m, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	tr := startRelay(t, dir, env.host, m)

	t.Run("API down", func(t *testing.T) {
		msg := failing(t, m)
		if !strings.Contains(msg, "503") || !strings.Contains(msg, "serving the self-signed certificate meanwhile") {
			t.Errorf("CertInfo: %q; want Cloudflare's 503 and the fallback in it", msg)
		}
		if !tr.srv.Status().CertPinned {
			t.Error("not serving the pinned self-signed certificate")
		}
		api := fake.Requests()
		n := observe(t, m)
		api = fake.Requests() - api
		t.Logf("Cloudflare API down: %d attempts, %d API requests in 3s", n, api)
		if api > (n+1)*4 {
			t.Errorf("%d API requests for %d attempts; want at most 4 per attempt", api, n+1)
		}
	})

	t.Run("DNS stale", func(t *testing.T) {
		fake.FreezeDNS()
		chals := env.pebble.ChallengeRequests()
		before := m.Status().Attempts
		fake.SetDown(nil)
		testwait.For(t, 30*time.Second, "an attempt that timed out waiting for the record", func() error {
			if msg := m.CertInfo().Error; m.Status().Attempts <= before+1 || !strings.Contains(msg, "propagat") {
				return fmt.Errorf("not yet: %s", msg)
			}
			return nil
		})
		if got := env.pebble.ChallengeRequests() - chals; got != 0 {
			t.Errorf("%d challenge requests at the CA while the record did not show; want none", got)
		}
	})

	t.Run("all well", func(t *testing.T) {
		fake.UnfreezeDNS()
		testwait.For(t, 60*time.Second, "a trusted certificate", func() error {
			if !m.Status().Trusted {
				return errString(m.CertInfo().Error)
			}
			return nil
		})
		if _, err := servedChain(tr.addr, env.host, env.pebble.Roots); err != nil {
			t.Error(err)
		}
	})
}

func TestRetryWait(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	limited := func(detail string) error {
		return fmt.Errorf("obtaining: %w", acme.Problem{Type: acme.ProblemTypeRateLimited, Status: 429, Detail: detail})
	}
	for _, tt := range []struct {
		name string
		n    int
		err  error
		want time.Duration
	}{
		{"first failure", 0, errors.New("x"), time.Minute},
		{"third failure", 2, errors.New("x"), 15 * time.Minute},
		{"beyond the schedule", 50, errors.New("x"), 6 * time.Hour},
		{"rate limited without a time", 0, limited("too many new orders recently"), 6 * time.Hour},
		{"rate limited until tomorrow", 0, limited("too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2026-03-02 12:00:00 UTC: see https://letsencrypt.org/docs/rate-limits/"), 24 * time.Hour},
		{"rate limited for a month", 0, limited("retry after 2026-04-01 12:00:00 UTC"), 7 * 24 * time.Hour},
		{"rate limited until soon", 0, limited("retry after 2026-03-01 12:05:00 UTC"), 6 * time.Hour},
	} {
		got := retryWait(DefaultRetry, tt.n, tt.err, now)
		if got < tt.want || got > tt.want+tt.want/10 {
			t.Errorf("%s: retryWait: got %v, want %v plus up to 10%%", tt.name, got, tt.want)
		}
	}
}

func TestClockPlausible(t *testing.T) {
	for _, tt := range []struct {
		now  time.Time
		want bool
	}{
		{time.Unix(0, 0), false},
		{time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true},
	} {
		if got := clockPlausible(tt.now); got != tt.want {
			t.Errorf("clockPlausible(%v): got %v, want %v", tt.now, got, tt.want)
		}
	}
}
