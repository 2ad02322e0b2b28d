package ddns_test

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/internal/bindtest"
)

// hookDetector runs after once its first Detect call returns: the line
// changes between two real detections.
type hookDetector struct {
	d     ddns.Detector
	calls atomic.Int32
	after func()
}

func (h *hookDetector) Detect(ctx context.Context, v4, v6 bool) detect.Result {
	r := h.d.Detect(ctx, v4, v6)
	if h.calls.Add(1) == 1 {
		h.after()
	}
	return r
}

// TestNoIPv4NeedsTwoDetections: the DERP map's "IPv4": "none" is a
// verdict like a write, so one odd detection must not flip it; two
// agreeing ones do.
func TestNoIPv4NeedsTwoDetections(t *testing.T) {
	w := newWorld(t)
	u := w.updater(t)
	ctx := context.Background()
	if err := u.Check(ctx); err != nil {
		t.Fatal(err)
	}

	// One detection sees a CGNAT address, the next the public one again.
	w.setPublic(netip.MustParseAddr("100.64.7.8"))
	w.cfg.Detector = &hookDetector{d: w.cfg.Detector, after: func() { w.setPublic(oldIP) }}
	u = w.updater(t)
	u.Check(ctx)
	if st := u.Status(); st.NoIPv4 || st.CGNAT || w.changes.Load() != 0 {
		t.Errorf("after one CGNAT detection: NoIPv4 %v CGNAT %v, OnChange calls %d; want false, false, 0", st.NoIPv4, st.CGNAT, w.changes.Load())
	}

	// Two agreeing detections: the verdict flips, once.
	w.cfg.Detector = w.cfg.Detector.(*hookDetector).d
	w.setPublic(netip.MustParseAddr("100.64.7.8"))
	if err := u.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if st := u.Status(); !st.NoIPv4 || w.changes.Load() != 1 {
		t.Errorf("after two CGNAT detections: NoIPv4 %v, OnChange calls %d; want true, 1", st.NoIPv4, w.changes.Load())
	}

	// And back: one public detection followed by CGNAT keeps "none".
	w.setPublic(oldIP)
	w.cfg.Detector = &hookDetector{d: w.cfg.Detector, after: func() { w.setPublic(netip.MustParseAddr("100.64.7.8")) }}
	u = w.updater(t)
	u.Check(ctx)
	if st := u.Status(); !st.NoIPv4 || w.changes.Load() != 1 {
		t.Errorf("after one public detection: NoIPv4 %v, OnChange calls %d; want true, 1", st.NoIPv4, w.changes.Load())
	}
}

// TestLateConfirmationIsAChange: a write whose confirmation timed out (a
// stale server) and that the servers serve at a later check is the change
// it was: it updates LastChange and the history, without writing again.
func TestLateConfirmationIsAChange(t *testing.T) {
	w := newWorld(t)
	w.cf.AddRecord("example.com", "derp", "A", oldIP.String(), 60, false)
	u := w.updater(t)
	ctx := context.Background()
	if err := u.Check(ctx); err != nil {
		t.Fatal(err)
	}
	w.setPublic(newIP)
	w.cf.FreezeDNS()
	if err := u.Check(ctx); err == nil || !strings.Contains(err.Error(), "do not serve it yet") {
		t.Fatalf("check against a stale server: got %v, want a confirm timeout", err)
	}
	writes := w.cf.Writes()
	w.cf.UnfreezeDNS()
	if err := u.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.cf.Writes(); got != writes {
		t.Errorf("writes after the server caught up: got %d more, want 0", got-writes)
	}
	st := u.Status()
	if st.LastError != "" || len(st.ServedA) != 1 || st.ServedA[0] != newIP {
		t.Errorf("status after the server caught up: got %+v", st)
	}
	if st.LastChange.IsZero() {
		t.Errorf("LastChange: zero, want the time of the late confirmation")
	}
	if len(st.History) == 0 || st.History[0].Kind != "change" || !strings.Contains(st.History[0].Message, "203.0.113.9 → 198.51.100.7") {
		t.Errorf("newest event: got %+v, want the change 203.0.113.9 → 198.51.100.7", st.History)
	}
	// The persisted history says so too.
	if st := w.updater(t).Status(); st.LastChange.IsZero() || st.History[0].Kind != "change" {
		t.Errorf("reloaded: LastChange %v, newest event %+v", st.LastChange, st.History[0])
	}
}

// TestRFC2136SecondRecord: with a second A record for the name in BIND, the
// updater refuses to write (as with Cloudflare) and says why; both records
// stay.
func TestRFC2136SecondRecord(t *testing.T) {
	srv := bindtest.Start(t, bindtest.Options{Zone: "example.com.", Records: []string{"derp 60 IN A 192.0.2.1", "derp 60 IN A 192.0.2.2"}})
	w := newWorld(t)
	p := &rfc2136.Provider{Server: srv.Addr.String(), Zone: srv.Zone, KeyName: srv.KeyName, KeyAlgorithm: srv.KeyAlgorithm, Secret: srv.Secret}
	w.cfg.Provider, w.cfg.ProviderName = p, "rfc2136"
	w.cfg.Verifier = &authdns.Checker{Resolvers: []netip.AddrPort{srv.Addr}, Port: srv.Addr.Port(), Timeout: time.Second}
	u := w.updater(t)
	if err := u.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "several A records") {
		t.Errorf("check: got %v, want an error about several A records", err)
	}
	s := mustServed(t, w.cfg.Verifier.(*authdns.Checker), "derp.example.com")
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	if g := authdns.Compare(s.A, want); !g.InSync() {
		t.Errorf("A afterwards: got %+v, want both %v", s.A, want)
	}
	if p.Updates() != 0 {
		t.Errorf("UPDATE messages: got %d, want 0", p.Updates())
	}
}
