package webui

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/relay"
)

// BenchmarkPages renders each page for a logged-in user through the
// whole handler: source check, session, CSRF tokens, templates into a
// buffer, security headers.
func BenchmarkPages(b *testing.B) {
	store, err := config.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c := config.Default()
	c.Hostname = "derp.example.com"
	if err := store.Save(c); err != nil {
		b.Fatal(err)
	}
	logs := NewLogRing(200)
	for i := 0; i < 200; i++ {
		logs.Logf("2026/05/01 12:00:00 relay: a typical log line, number %d", i)
	}
	s, err := New(Options{
		Store: store, Password: testPassword, Logs: logs,
		RelayStatus: func() relay.Status { return syntheticRelay(time.Now()) },
		DDNSStatus:  func() ddns.Status { return syntheticDDNS(time.Now()) },
		MapOptions:  func() derpmap.Options { return derpmap.Options{PinnedCert: []byte("cert")} },
		BoxName:     "homederp",
	})
	if err != nil {
		b.Fatal(err)
	}
	_, cookie := s.sessions.create()
	for _, tt := range []struct{ name, path string }{
		{"status", "/"}, {"setup", "/setup"}, {"derpmap", "/derpmap"}, {"yaml-download", "/derpmap/derpmap.yaml"},
	} {
		p := tt.path
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", p, nil)
				req.RemoteAddr = "192.168.1.50:40000"
				req.Host = "homederp"
				req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
				w := httptest.NewRecorder()
				s.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d", p, w.Code)
				}
			}
		})
	}
}
