package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// hangingVerifier is a verify URL that admits everyone, or, while hung,
// takes requests and never answers, like a headscale stuck on its
// database.
type hangingVerifier struct {
	*httptest.Server
	hung     atomic.Bool
	release  chan struct{} // closed when the test ends: hung handlers return
	requests atomic.Int64
}

func newHangingVerifier(t *testing.T) *hangingVerifier {
	h := &hangingVerifier{release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		// The server notices a client going away only once the
		// request body is read.
		io.Copy(io.Discard, r.Body)
		if h.hung.Load() {
			select {
			case <-h.release:
			case <-r.Context().Done():
			}
			return
		}
		json.NewEncoder(w).Encode(tailcfg.DERPAdmitClientResponse{Allow: true})
	}))
	t.Cleanup(func() {
		close(h.release)
		h.Close()
	})
	return h
}

// TestHungVerifyURL: with the verify URL hung, new clients are refused
// within the verdict deadline (no verdict = refused), connected ones keep
// relaying, Status stays prompt, and admissions resume as soon as the URL
// answers again.
func TestHungVerifyURL(t *testing.T) {
	h := newHangingVerifier(t)
	tr := startRelayWith(t, t.TempDir(), relayOpts{policy: Policy{Verify: Verify{Mode: VerifyURL, URL: h.URL + "/verify"}}})
	a := relaytest.Connect(t, tr.region)
	b := relaytest.Connect(t, tr.region)
	relaytest.ExpectVerdict(t, a, relaytest.Admitted, 5*time.Second)
	relaytest.ExpectVerdict(t, b, relaytest.Admitted, 5*time.Second)

	h.hung.Store(true)
	for i := 0; i < 3; i++ {
		c := relaytest.Connect(t, tr.region)
		took := relaytest.ExpectVerdict(t, c, relaytest.Refused, 5*time.Second)
		if took > 2*time.Second {
			t.Errorf("refusal with the verify URL hung took %v, want under 2s", took)
		}
		t.Logf("HUNG VERIFY URL: refused after %v", took.Round(time.Millisecond))
	}
	relaytest.Exchange(t, a, b)
	start := time.Now()
	st := tr.srv.Status()
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Errorf("Status with the verify URL hung took %v", el)
	}
	if st.RefusedNoVerdict != 3 || !st.LastRefusal.NoVerdict || !strings.Contains(st.LastRefusal.Reason, "did not answer within") {
		t.Errorf("Status: %d refused without a verdict, last %+v; want 3, saying the URL did not answer", st.RefusedNoVerdict, st.LastRefusal)
	}

	h.hung.Store(false)
	relaytest.ExpectVerdict(t, relaytest.Connect(t, tr.region), relaytest.Admitted, 2*time.Second)
}

// TestAdmissionCap: beyond MaxPendingVerdicts checks in flight a client is
// refused at once instead of waiting on a stuck verifier.
func TestAdmissionCap(t *testing.T) {
	h := newHangingVerifier(t)
	h.hung.Store(true)
	const limit = 2
	tr := startRelayWith(t, t.TempDir(), relayOpts{
		policy:         Policy{Verify: Verify{Mode: VerifyURL, URL: h.URL + "/verify"}},
		verdictTimeout: 3 * time.Second,
		maxPending:     limit,
	})
	var clients []*relaytest.Client
	for i := 0; i < limit; i++ {
		clients = append(clients, relaytest.Connect(t, tr.region))
	}
	testwait.For(t, 5*time.Second, "the checks in flight", func() error {
		if n := tr.srv.Status().AdmissionsPending; n != limit {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
	over := relaytest.Connect(t, tr.region)
	if took := relaytest.ExpectVerdict(t, over, relaytest.Refused, 2*time.Second); took > time.Second {
		t.Errorf("refusal over the cap took %v, want at once", took)
	}
	if r := tr.srv.Status().LastRefusal; !strings.Contains(r.Reason, "already waiting") || !r.NoVerdict {
		t.Errorf("last refusal: %+v, want one for the cap", r)
	}
	if got := h.requests.Load(); got != limit {
		t.Errorf("the verifier got %d requests, want %d (the client over the cap is not asked)", got, limit)
	}
	for _, c := range clients {
		relaytest.ExpectVerdict(t, c, relaytest.Refused, 5*time.Second)
	}
}

// TestRetireDoesNotWaitForVerdicts: a policy change and Close while
// checks hang on a stuck checker return at once, and end those checks.
func TestRetireDoesNotWaitForVerdicts(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    func(t *testing.T) Verify
	}{
		{"verify URL", func(t *testing.T) Verify {
			h := newHangingVerifier(t)
			h.hung.Store(true)
			return Verify{Mode: VerifyURL, URL: h.URL + "/verify"}
		}},
		{"tailscaled", func(t *testing.T) Verify {
			// What a SIGSTOPped tailscaled looks like on its socket:
			// connections are taken (the kernel's backlog) and never
			// answered. TestHungTailscaled stops a real one.
			sock := filepath.Join(t.TempDir(), "tailscaled.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			return Verify{Mode: VerifyTailscaled, TailscaledSocket: sock}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.v(t)
			base := runtime.NumGoroutine()
			tr := startRelayWith(t, t.TempDir(), relayOpts{
				policy:         Policy{Verify: v},
				verdictTimeout: time.Minute, // only retiring can end the checks
			})
			var clients []*relaytest.Client
			for i := 0; i < 5; i++ {
				clients = append(clients, relaytest.Connect(t, tr.region))
			}
			testwait.For(t, 5*time.Second, "the checks in flight", func() error {
				if n := tr.srv.Status().AdmissionsPending; n != len(clients) {
					return fmt.Errorf("%d pending", n)
				}
				return nil
			})
			start := time.Now()
			if err := tr.srv.Apply(Policy{}); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("Apply with 5 checks hanging took %v", el)
			}
			for _, c := range clients {
				relaytest.ExpectVerdict(t, c, relaytest.Refused, 2*time.Second)
			}
			relaytest.ExpectVerdict(t, relaytest.Connect(t, tr.region), relaytest.Admitted, 5*time.Second)

			if err := tr.srv.Apply(Policy{Verify: v}); err != nil {
				t.Fatal(err)
			}
			relaytest.Connect(t, tr.region)
			testwait.For(t, 5*time.Second, "a check in flight", func() error {
				if tr.srv.Status().AdmissionsPending != 1 {
					return errors.New("none")
				}
				return nil
			})
			start = time.Now()
			tr.srv.Close()
			if el := time.Since(start); el > time.Second {
				t.Errorf("Close with a check hanging took %v", el)
			}
			for _, c := range clients {
				c.Close()
			}
			testwait.For(t, 10*time.Second, "goroutines back to the start", func() error {
				if n := runtime.NumGoroutine(); n > base+5 {
					return fmt.Errorf("%d goroutines, %d at the start", n, base)
				}
				return nil
			})
		})
	}
}

// TestVerdictKinds tells a refusal from a missing verdict in Status.
func TestVerdictKinds(t *testing.T) {
	member, stranger := key.NewNode(), key.NewNode()
	adm := newAdmissionServer(t, member.Public())
	tr := startRelayWith(t, t.TempDir(), relayOpts{policy: Policy{Verify: Verify{Mode: VerifyURL, URL: adm.URL + "/verify"}}})
	expectVerdict(t, tr, stranger, relaytest.Refused)
	st := tr.srv.Status()
	if st.Refused != 1 || st.RefusedNoVerdict != 0 || st.LastRefusal.NoVerdict {
		t.Errorf("after a no: refused %d, %d without a verdict, last %+v; want a judged refusal", st.Refused, st.RefusedNoVerdict, st.LastRefusal)
	}
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(hung.Close)
	if err := tr.srv.Apply(Policy{Verify: Verify{Mode: VerifyURL, URL: hung.URL}}); err != nil {
		t.Fatal(err)
	}
	expectVerdict(t, tr, member, relaytest.Refused)
	st = tr.srv.Status()
	if st.Refused != 2 || st.RefusedNoVerdict != 1 || !st.LastRefusal.NoVerdict {
		t.Errorf("after a hang: refused %d, %d without a verdict, last %+v; want one of each", st.Refused, st.RefusedNoVerdict, st.LastRefusal)
	}
}
