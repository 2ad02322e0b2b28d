package relay

import (
	"bufio"
	"expvar"
	"net"
	"net/http"
	"sync"

	"tailscale.com/derp/derpserver"
	"tailscale.com/metrics"
)

// A generation is one derpserver.Server behind the relay's listeners.
//
// derpserver reads its admission settings and mesh key without locks and
// wants them set "before serving begins", so a change of either does not
// poke the running server: the relay starts a new generation with the new
// settings, routes new connections to it and retires the old one, which
// disconnects its clients. They reconnect within a second or two and are
// admitted under the new policy, so turning verify-clients on cannot leave
// unverified clients connected. Everything else (rate limits, the mesh
// list, certificates) changes in place without disconnecting anyone.
type generation struct {
	derp    *derpserver.Server
	vars    *metrics.Set // derp.ExpVar, kept so Status can read it
	handler http.Handler
	policy  Policy // the Verify and MeshKey it was built with
	mesh    *mesh
	reach   *reachLog // the relay's, shared by its generations
	gate    *gate     // admission; nil without verification

	mu      sync.Mutex
	retired bool
	conns   map[net.Conn]bool // hijacked connections, closed on retire
}

func (s *Server) newGeneration(p Policy) (*generation, error) {
	d := derpserver.New(s.priv, s.derpLogf)
	var gt *gate
	if v := p.Verify.normalized(); v.Mode != VerifyOff {
		// derpserver asks the relay's gate, never tailscaled or the
		// verify URL itself (see admission.go).
		var err error
		if gt, err = s.admit.newGate(v); err != nil {
			return nil, err
		}
		d.SetVerifyClientURL(gt.url)
	}
	if p.MeshKey != "" {
		// validate checked it already.
		if err := d.SetMeshKey(p.MeshKey); err != nil {
			s.logf("relay: mesh key: %v", err)
		}
	}
	g := &generation{
		derp:   d,
		vars:   d.ExpVar(true).(*metrics.Set),
		policy: p,
		gate:   gt,
		conns:  map[net.Conn]bool{},
	}
	g.reach = s.reach
	g.handler = derpserver.AddWebSocketSupport(d, derpserver.Handler(d))
	g.mesh = newMesh(d, s.logf)
	return g, nil
}

// sameServer reports whether p can run on g's derpserver.
func (g *generation) sameServer(p Policy) bool {
	return g.policy.Verify.normalized() == p.Verify.normalized() && g.policy.MeshKey == p.MeshKey
}

// retire stops g's mesh links and disconnects its clients. It waits for
// no verdict: closing the gate first ends the admission checks in flight.
func (g *generation) retire() {
	if g.gate != nil {
		g.gate.close()
	}
	g.mu.Lock()
	g.retired = true
	conns := g.conns
	g.conns = nil
	g.mu.Unlock()
	g.mesh.close()
	for c := range conns {
		c.Close()
	}
	g.derp.Close()
}

// ServeHTTP hands a /derp request to g's derpserver, noting the
// connection it hijacks so that retire can close it. A request that
// raced with retire gets its connection closed at once instead of
// being served by a retired server; the client reconnects to the new
// generation.
func (g *generation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hw := &hijackNoter{ResponseWriter: w, g: g, remote: r.RemoteAddr}
	g.handler.ServeHTTP(hw, r)
	if hw.conn != nil {
		g.mu.Lock()
		delete(g.conns, hw.conn)
		g.mu.Unlock()
	}
}

type hijackNoter struct {
	http.ResponseWriter
	g      *generation
	remote string // the request's RemoteAddr
	conn   net.Conn
}

func (h *hijackNoter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	h.g.mu.Lock()
	defer h.g.mu.Unlock()
	if h.g.retired {
		// The DERP handshake fails on the closed connection and the
		// client retries.
		c.Close()
		return c, brw, nil
	}
	h.g.conns[c] = true
	h.conn = c
	// TLS and the DERP upgrade got through: the client reached the
	// relay. (Admission comes later and does not matter here.)
	h.g.reach.note(h.remote)
	return c, brw, nil
}

func (h *hijackNoter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// counters are the derpserver counters Status reports as totals since
// the relay started, summed over generations.
type counters struct {
	bytesRecv, bytesSent int64
}

func (g *generation) counters() counters {
	return counters{
		bytesRecv: intVar(g.vars.Get("bytes_received")),
		bytesSent: intVar(g.vars.Get("bytes_sent")),
	}
}

func (c counters) add(o counters) counters {
	return counters{c.bytesRecv + o.bytesRecv, c.bytesSent + o.bytesSent}
}

// intVar reads an integer expvar (an *expvar.Int or an expvar.Func
// returning an integer); anything else reads as 0.
func intVar(v expvar.Var) int64 {
	switch v := v.(type) {
	case *expvar.Int:
		return v.Value()
	case expvar.Func:
		switch n := v().(type) {
		case int:
			return int64(n)
		case int64:
			return n
		case uint64:
			return int64(n)
		}
	}
	return 0
}
