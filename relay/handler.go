package relay

import (
	"io"
	"net/http"

	"tailscale.com/derp/derpserver"
)

// DERP returns the derpserver serving new connections now. It changes
// when Apply installs a new admission policy or mesh key.
func (s *Server) DERP() *derpserver.Server { return s.gen.Load().derp }

// handler is the mux on the public DERP port. It has no /debug/ and no
// metrics: those live on the LAN-only web UI (MetricsHandler).
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/derp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if addr, ok := clientAddr(r, *s.trusted.Load()); ok {
			w, r = forwardedRequest(w, r, addr)
		}
		s.gen.Load().ServeHTTP(w, r)
	}))
	// Clients of different ages use either path.
	mux.HandleFunc("/derp/probe", derpserver.ProbeHandler)
	mux.HandleFunc("/derp/latency-check", derpserver.ProbeHandler)
	mux.HandleFunc("/generate_204", derpserver.ServeNoContent)
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "User-agent: *\nDisallow: /\n")
	})
	mux.HandleFunc("/derpmap.json", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.DERPMap == nil {
			http.NotFound(w, r)
			return
		}
		b, err := s.cfg.DERPMap()
		if err != nil {
			s.logf("relay: rendering /derpmap.json: %v", err)
			http.Error(w, "DERP map unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "This is a DERP relay for Tailscale clients, run by homederp.\n")
	})
	return mux
}
