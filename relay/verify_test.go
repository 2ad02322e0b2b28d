package relay

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// admissionServer is a verify URL like headscale's /verify: it admits
// the node keys in allow.
type admissionServer struct {
	*httptest.Server
	mu       sync.Mutex
	allow    map[key.NodePublic]bool
	requests atomic.Int64
}

func newAdmissionServer(t *testing.T, allow ...key.NodePublic) *admissionServer {
	a := &admissionServer{allow: map[key.NodePublic]bool{}}
	for _, k := range allow {
		a.allow[k] = true
	}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
		if r.Method != "POST" || r.URL.Path != "/verify" {
			http.Error(w, "want POST /verify", http.StatusBadRequest)
			return
		}
		var req tailcfg.DERPAdmitClientRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		ok := a.allow[req.NodePublic]
		a.mu.Unlock()
		json.NewEncoder(w).Encode(tailcfg.DERPAdmitClientResponse{Allow: ok})
	}))
	t.Cleanup(a.Close)
	return a
}

// expectVerdict connects a client with priv and fails t unless the
// server's verdict is want.
func expectVerdict(t *testing.T, tr *testRelay, priv key.NodePrivate, want relaytest.Verdict) {
	t.Helper()
	c, err := relaytest.TryConnectKey(t, tr.region, priv)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	relaytest.ExpectVerdict(t, c, want, 10*time.Second)
}

func TestVerifyURL(t *testing.T) {
	member, stranger := key.NewNode(), key.NewNode()
	adm := newAdmissionServer(t, member.Public())
	tr := startRelayWith(t, t.TempDir(), relayOpts{policy: Policy{Verify: Verify{Mode: VerifyURL, URL: adm.URL + "/verify"}}})

	expectVerdict(t, tr, member, relaytest.Admitted)
	expectVerdict(t, tr, stranger, relaytest.Refused)
	st := tr.srv.Status()
	if st.VerifyMode != "url" || st.Refused != 1 || st.LastRefusal.Client != stranger.Public().String() {
		t.Errorf("Status: mode %q, refused %d, last %+v; want url, 1, the stranger", st.VerifyMode, st.Refused, st.LastRefusal)
	}
	if !strings.Contains(st.LastRefusal.Reason, "not allowed") {
		t.Errorf("LastRefusal.Reason: got %q, want the admission controller's no", st.LastRefusal.Reason)
	}

	// An unreachable verifier: closed by default, open when asked.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/verify"
	ln.Close()
	for _, tt := range []struct {
		failOpen bool
		want     relaytest.Verdict
	}{
		{false, relaytest.Refused},
		{true, relaytest.Admitted},
	} {
		t.Run(fmt.Sprintf("unreachable/failOpen=%v", tt.failOpen), func(t *testing.T) {
			if err := tr.srv.Apply(Policy{Verify: Verify{Mode: VerifyURL, URL: dead, URLFailOpen: tt.failOpen}}); err != nil {
				t.Fatal(err)
			}
			expectVerdict(t, tr, member, tt.want)
		})
	}
}

func TestPolicyValidation(t *testing.T) {
	tr := startRelay(t, t.TempDir())
	for _, tt := range []struct {
		name string
		p    Policy
		want string
	}{
		{"bad mode", Policy{Verify: Verify{Mode: "maybe"}}, "unknown verify mode"},
		{"url mode without URL", Policy{Verify: Verify{Mode: VerifyURL}}, "not an http"},
		{"bad mesh key", Policy{MeshKey: "abc"}, "mesh key"},
		{"bad pin", Policy{MeshKey: strings.Repeat("ab", 32), MeshWith: []MeshPeer{{Host: "a:1", CertName: "sha256-raw:zz"}}}, "pin"},
		{"negative rate", Policy{ClientRate: RateLimit{BytesPerSec: -1}}, "negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := tr.srv.gen.Load()
			err := tr.srv.Apply(tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Apply: got %v, want an error about %q", err, tt.want)
			}
			if tr.srv.gen.Load() != before || tr.srv.Policy().Verify.Mode != "" {
				t.Error("a refused policy changed the relay")
			}
		})
	}
}

// TestVerifyTailscaledDown runs verify-clients against a socket where no
// tailscaled listens: every client is refused (fail closed) and the
// status says why in plain words.
func TestVerifyTailscaledDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tailscaled.sock")
	var logMu sync.Mutex
	var logged []string
	logf := func(format string, args ...any) {
		logMu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		logMu.Unlock()
		t.Logf(format, args...)
	}
	tr := startRelayWith(t, t.TempDir(), relayOpts{
		policy:       Policy{Verify: Verify{Mode: VerifyTailscaled, TailscaledSocket: sock}},
		pollInterval: 100 * time.Millisecond,
		logf:         logf,
	})
	const attempts = 5
	for i := 0; i < attempts; i++ {
		expectVerdict(t, tr, key.NewNode(), relaytest.Refused)
	}
	testwait.For(t, 5*time.Second, "tailscaled state", func() error {
		if st := tr.srv.Status(); !strings.HasPrefix(st.TailscaledState, "unreachable: tailscaled is not running") {
			return errString(st.TailscaledState)
		}
		return nil
	})
	st := tr.srv.Status()
	if st.Refused != attempts || st.RefusedNoVerdict != attempts {
		t.Errorf("Refused: got %d (%d without a verdict), want %d, all without a verdict", st.Refused, st.RefusedNoVerdict, attempts)
	}
	if !strings.Contains(st.VerifyProblem, "every new client is refused") {
		t.Errorf("VerifyProblem: got %q", st.VerifyProblem)
	}
	// The web UI translates both by their sentences.
	if got, want := st.Msgs[st.VerifyProblem].ID, "relaystate.verify_unreachable"; got != want {
		t.Errorf("the sentence of VerifyProblem: got %q, want %q", got, want)
	}
	if got, want := st.Msgs[st.TailscaledState].ID, "relaystate.ts_unreachable"; got != want {
		t.Errorf("the sentence of TailscaledState: got %q, want %q", got, want)
	}
	logMu.Lock()
	var refusalLines int
	for _, l := range logged {
		if strings.Contains(l, "refused") || strings.Contains(l, "rejected") {
			refusalLines++
		}
	}
	logMu.Unlock()
	if refusalLines > 2 {
		t.Errorf("%d refusals made %d log lines, want at most 2 (the first one and the state change)", attempts, refusalLines)
	}
}

func TestRefusalLogSummarizes(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var lines []string
	r := newRefusalLog(func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }, func() time.Time { return now })
	defer r.close()
	// A refused client retrying once a second for three minutes, and a
	// second client now and then.
	for i := 0; i < 180; i++ {
		now = now.Add(time.Second)
		client := "nodekey:aaaa"
		if i%30 == 0 {
			client = "nodekey:bbbb"
		}
		r.note(Refusal{Time: now, Client: client, Remote: "198.51.100.7:41641", Reason: "not found in local tailscaled"})
		if i%60 == 59 {
			r.summarize() // what the timer does at the end of each minute
		}
	}
	total, _, last := r.stats()
	if total != 180 || last.Client != "nodekey:aaaa" {
		t.Errorf("stats: got %d, %+v; want 180 and the last client", total, last)
	}
	if len(lines) > 4 {
		t.Errorf("180 refusals in 3 minutes made %d log lines, want at most 4:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[0], "refused client nodekey:bbbb from 198.51.100.7:41641: not found in local tailscaled") {
		t.Errorf("first line: got %q, want the refusal in full", lines[0])
	}
	if !strings.Contains(lines[1], "refused 59 more connection attempts from 2 clients") {
		t.Errorf("second line: got %q, want a summary", lines[1])
	}
}

func TestParseRejection(t *testing.T) {
	for _, tt := range []struct {
		msg, client, reason string
		ok                  bool
	}{
		{"client nodekey:ab12 rejected: peer nodekey:ab12 not authorized (not found in local tailscaled)", "nodekey:ab12", "peer nodekey:ab12 not authorized (not found in local tailscaled)", true},
		{"client nodekey:ab12 rejected: admission controller: 503 Service Unavailable", "nodekey:ab12", "admission controller: 503 Service Unavailable", true},
		{"receive client key: EOF", "", "", false},
		{"client gone rejected nothing", "", "", false},
	} {
		client, reason, ok := parseRejection(tt.msg)
		if client != tt.client || reason != tt.reason || ok != tt.ok {
			t.Errorf("parseRejection(%q): got %q, %q, %v; want %q, %q, %v", tt.msg, client, reason, ok, tt.client, tt.reason, tt.ok)
		}
	}
}

// TestApplyNewAdmissionReconnects turns verification on under a
// connected client: the client is disconnected and its reconnection is
// judged by the new policy; turning it off again lets it back in.
func TestApplyNewAdmissionReconnects(t *testing.T) {
	tr := startRelay(t, t.TempDir())
	a := relaytest.Connect(t, tr.region)
	b := relaytest.Connect(t, tr.region)
	relaytest.Exchange(t, a, b)

	adm := newAdmissionServer(t, b.Priv.Public()) // only b is a member
	if err := tr.srv.Apply(Policy{Verify: Verify{Mode: VerifyURL, URL: adm.URL + "/verify"}}); err != nil {
		t.Fatal(err)
	}
	// a's reconnection attempts (its Send or Recv after the drop) are refused.
	testwait.For(t, 15*time.Second, "a refused", func() error {
		a.Send(b.Priv.Public(), []byte("hello?"))
		if tr.srv.Status().Refused == 0 {
			return errString("no refusal yet")
		}
		return nil
	})
	if got := tr.srv.Status().LastRefusal.Client; got != a.Priv.Public().String() {
		t.Errorf("refused %s, want a (%s)", got, a.Priv.Public())
	}
	c := relaytest.Connect(t, tr.region)
	relaytest.ExpectVerdict(t, c, relaytest.Refused, 5*time.Second)

	if err := tr.srv.Apply(Policy{}); err != nil {
		t.Fatal(err)
	}
	relaytest.Exchange(t, relaytest.Connect(t, tr.region), b)
}
