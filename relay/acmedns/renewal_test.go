package acmedns

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/relaytest"
)

// Timing of TestRenewalAfterOutage. certmagic retries a failed renewal
// after a fixed minute (then 2, 2, 5, 10 ... up to 6 h, for 30 days), so
// a certificate must outlive its renewal window's start by more than a
// minute for the retry to land before it expires: with 110 s and renewal
// at 80 % of life left, the window opens 22 s after issuance, the retry
// comes a minute after the failed attempt, and about 25 s are left for it.
const (
	renewValidity = 110 * time.Second
	renewRatio    = 0.8
	// caBackAfter is how long the CA stays down after the first renewal
	// attempt failed, so the outage spans that part of the window.
	caBackAfter = 10 * time.Second
)

// renewCycle is what the test records about one outage.
type renewCycle struct {
	Issued       time.Time `json:"issued"`        // NotBefore of the certificate in use
	Expires      time.Time `json:"expires"`       // its NotAfter
	FirstFailure time.Time `json:"first_failure"` // the renewal attempt the outage made fail
	CABack       time.Time `json:"ca_back"`
	Renewed      time.Time `json:"renewed"` // when the new certificate served
	Margin       float64   `json:"margin_seconds"`
	Attempts     int       `json:"renew_attempts"` // renewal attempts certmagic made in the cycle
}

// TestRenewalAfterOutage: the CA goes down right after it issued the
// certificate and stays down across the start of the renewal window.
// Meanwhile the old certificate keeps serving (trusted, unpinned, to new
// and connected clients alike) and the status says that renewing failed
// and the current one stays in use until it expires. Once the CA is back
// the certificate renews before it expires, the status is clean again,
// and the client connected through it all was never dropped.
// HOMEDERP_SOAK_ACME_CYCLES=N (scripts/bench-soak.sh) repeats the outage
// for N renewals.
func TestRenewalAfterOutage(t *testing.T) {
	cycles := 1
	if v := os.Getenv("HOMEDERP_SOAK_ACME_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("HOMEDERP_SOAK_ACME_CYCLES=%q: want a count", v)
		}
		cycles = n
	}
	env := rfc2136Env(t, "renew.homederp.test", renewValidity)
	dir := t.TempDir()
	fallback, err := relay.SelfSigned(filepath.Join(dir, "certs"), env.host, time.Now(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.config(t, dir, fallback, nil)
	cfg.RenewalWindowRatio = renewRatio
	m, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	tr := startRelay(t, dir, env.host, m)
	testwait.For(t, 60*time.Second, "the first trusted certificate", func() error {
		if !m.Status().Trusted {
			return errString(m.CertInfo().Error)
		}
		return nil
	})
	a := mustConnect(t, tr.region(), env.pebble.Roots)
	b := mustConnect(t, tr.region(), env.pebble.Roots)
	relaytest.Exchange(t, a, b)
	aLocal, _ := connState(t, a)

	var record []renewCycle
	for i := range cycles {
		old, err := servedLeaf(tr.addr, env.host)
		if err != nil {
			t.Fatal(err)
		}
		c := renewCycle{Issued: old.NotBefore, Expires: old.NotAfter}
		attempts := m.Status().RenewAttempts
		env.pebble.SetDown(true)

		// Renewal starts at 20 % of life, or earlier at the time
		// certmagic picked in the CA's ARI window (Pebble suggests the
		// whole life of so short a certificate); the attempt fails.
		testwait.For(t, time.Until(old.NotAfter), "a failed renewal in the status", func() error {
			st := m.Status()
			if st.RenewAttempts <= attempts || st.LastError == "" {
				return fmt.Errorf("no failed renewal yet (attempts %d)", st.RenewAttempts)
			}
			return nil
		})
		c.FirstFailure = time.Now()
		info := m.CertInfo()
		for _, want := range []string{"renewing the certificate failed", "HTTP 503", "the current one stays in use until it expires on", "renewal is retried"} {
			if !strings.Contains(info.Error, want) {
				t.Errorf("cycle %d: CertInfo during the outage: %q; want it to say %q", i, info.Error, want)
			}
		}
		if st := tr.srv.Status(); st.CertError != info.Error || st.CertPinned || !st.CertNotAfter.Equal(old.NotAfter) {
			t.Errorf("cycle %d: relay status during the outage: error %q, pinned %v, expiry %v; want the renewal failure, unpinned, the old expiry %v", i, st.CertError, st.CertPinned, st.CertNotAfter, old.NotAfter)
		}

		// The old certificate serves meanwhile: new clients that trust
		// the CA connect, the connected ones keep exchanging.
		time.Sleep(caBackAfter / 2)
		if leaf, err := servedLeaf(tr.addr, env.host); err != nil || !leaf.Equal(old) {
			t.Fatalf("cycle %d: during the outage the relay serves another certificate (%v)", i, err)
		}
		if _, err := servedChain(tr.addr, env.host, env.pebble.Roots); err != nil {
			t.Errorf("cycle %d: during the outage the served certificate does not verify: %v", i, err)
		}
		if region := tr.region(); region.Nodes[0].CertName != "" {
			t.Errorf("cycle %d: the map pins %q during the outage; the trusted certificate still serves", i, region.Nodes[0].CertName)
		}
		relaytest.Exchange(t, mustConnect(t, tr.region(), env.pebble.Roots), a)
		time.Sleep(caBackAfter / 2)

		env.pebble.SetDown(false)
		c.CABack = time.Now()
		testwait.For(t, time.Until(old.NotAfter), "a renewed certificate served before the old one expires", func() error {
			leaf, err := servedLeaf(tr.addr, env.host)
			if err != nil {
				return err
			}
			if leaf.Equal(old) {
				return fmt.Errorf("still the old certificate; %s", m.CertInfo().Error)
			}
			return nil
		})
		c.Renewed = time.Now()
		c.Margin = old.NotAfter.Sub(c.Renewed).Seconds()
		c.Attempts = m.Status().RenewAttempts - attempts
		if c.Renewed.After(old.NotAfter) {
			t.Fatalf("cycle %d: renewed at %v, after the old certificate expired at %v", i, c.Renewed, old.NotAfter)
		}
		if _, err := servedChain(tr.addr, env.host, env.pebble.Roots); err != nil {
			t.Errorf("cycle %d: the renewed certificate does not verify: %v", i, err)
		}
		testwait.For(t, 5*time.Second, "a clean status after the renewal", func() error {
			if st := tr.srv.Status(); st.CertError != "" || st.CertPinned {
				return fmt.Errorf("relay status: error %q, pinned %v", st.CertError, st.CertPinned)
			}
			return nil
		})
		relaytest.Exchange(t, a, b)
		if local, _ := connState(t, a); local != aLocal {
			t.Errorf("cycle %d: client a reconnected (%s, then %s); want its connection kept through the outage and the renewal", i, aLocal, local)
		}
		t.Logf("cycle %d: certificate of %s valid until %s; the first renewal attempt failed %.1fs after issuance (CA down), CA back %.1fs later, renewed %.1fs after that, %.1fs before expiry, %d renewal attempts",
			i, c.Issued.Format(time.TimeOnly), c.Expires.Format(time.TimeOnly),
			c.FirstFailure.Sub(c.Issued).Seconds(), c.CABack.Sub(c.FirstFailure).Seconds(), c.Renewed.Sub(c.CABack).Seconds(), c.Margin, c.Attempts)
		record = append(record, c)
	}
	if out := os.Getenv("HOMEDERP_TEST_OUTPUT"); out != "" {
		b, _ := json.MarshalIndent(record, "", "  ")
		os.MkdirAll(filepath.Join(out, "soak"), 0755)
		if err := os.WriteFile(filepath.Join(out, "soak", "acme-renewal.json"), append(b, '\n'), 0644); err != nil {
			t.Error(err)
		}
	}
}
