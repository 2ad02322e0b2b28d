package relay

import (
	"errors"
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/types/key"
)

// metricValue returns the value of the sample line starting with name
// (labels included, e.g. `stun_requests{disposition="success"}`).
func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("metric %s missing from:\n%s", name, text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func scrape(t *testing.T, s *Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestMetricsAndStatus runs two relays in one process (nothing is
// published globally, so nothing panics) and checks that each one's
// metrics and status count its own clients.
func TestMetricsAndStatus(t *testing.T) {
	adm := newAdmissionServer(t)
	r1 := startRelayWith(t, t.TempDir(), relayOpts{policy: Policy{
		ClientRate: RateLimit{BytesPerSec: 1 << 20, BurstBytes: 1 << 20},
	}})
	r2 := startRelayWith(t, t.TempDir(), relayOpts{policy: Policy{Verify: Verify{Mode: VerifyURL, URL: adm.URL + "/verify"}}})

	a := relaytest.Connect(t, r1.region)
	b := relaytest.Connect(t, r1.region)
	relaytest.Exchange(t, a, b)
	if c, err := relaytest.TryConnectKey(t, r2.region, key.NewNode()); err != nil {
		t.Fatal(err)
	} else {
		relaytest.ExpectVerdict(t, c, relaytest.Refused, 10*time.Second)
	}
	stunRoundTrip(t, "udp4", r1.srv.STUNAddrs()[0])
	// stunserver counts an answer after sending it: the client can have
	// it a moment before the counter moves.
	testwait.For(t, 5*time.Second, "the STUN answer counted", func() error {
		if r1.srv.Status().STUNRequests < 1 {
			return errors.New("not counted yet")
		}
		return nil
	})

	m1, m2 := scrape(t, r1.srv), scrape(t, r2.srv)
	for _, tt := range []struct {
		text, name string
		want       float64
	}{
		{m1, "derp_current_connections", 2},
		{m1, "homederp_relay_clients_connected", 2},
		{m1, "homederp_relay_refused_clients", 0},
		{m1, "homederp_relay_client_rate_bytes_per_second", 1 << 20},
		{m1, "derp_rate_limit_per_client_bytes_per_second", 1 << 20},
		{m2, "derp_current_connections", 0},
		{m2, "homederp_relay_refused_clients", 1},
		{m2, "homederp_relay_cert_error", 0},
	} {
		if got := metricValue(t, tt.text, tt.name); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	for _, name := range []string{`stun_requests{disposition="success"}`, "derp_bytes_received", "homederp_relay_cert_not_after_seconds", "goroutines"} {
		if got := metricValue(t, m1, name); got <= 0 {
			t.Errorf("%s: got %v, want > 0", name, got)
		}
	}
	if !strings.Contains(m1, "# TYPE derp_current_connections gauge") {
		t.Error("derp_current_connections has no gauge TYPE line")
	}

	st := r1.srv.Status()
	if st.ClientsConnected != 2 || st.BytesReceived == 0 || st.BytesSent == 0 || st.STUNRequests < 1 {
		t.Errorf("r1 Status: clients %d, bytes %d/%d, STUN %d; want 2 clients, traffic, a STUN request", st.ClientsConnected, st.BytesReceived, st.BytesSent, st.STUNRequests)
	}
	if st.CertMode != "self-signed" || !st.CertPinned || st.CertIssuer != "homederp self-signed" || time.Until(st.CertNotAfter) < 10*365*24*time.Hour {
		t.Errorf("r1 cert status: mode %q pinned %v issuer %q until %v", st.CertMode, st.CertPinned, st.CertIssuer, st.CertNotAfter)
	}
	if st.Hostname != "localhost" || len(st.DERPAddrs) != 1 || st.DERPAddrs[0] != r1.srv.DERPAddr().String() || len(st.STUNAddrs) != 2 || st.Started.IsZero() {
		t.Errorf("r1 Status addresses: %+v", st)
	}
	if st.VerifyMode != "off" || r2.srv.Status().VerifyMode != "url" {
		t.Errorf("VerifyMode: got %q and %q, want off and url", st.VerifyMode, r2.srv.Status().VerifyMode)
	}

	// Bytes count across a new admission policy (a new derpserver).
	before := st.BytesReceived
	if err := r1.srv.Apply(Policy{Verify: Verify{Mode: VerifyURL, URL: adm.URL + "/verify"}}); err != nil {
		t.Fatal(err)
	}
	if got := r1.srv.Status().BytesReceived; got < before {
		t.Errorf("BytesReceived went from %d to %d across Apply; it counts since start", before, got)
	}
}
