package relay

import (
	"net/netip"
	"sync"
	"time"

	"github.com/homederp/homederp/ddns/ipclass"
)

// Reach is the strongest evidence that the relay can be reached from the
// Internet: DERP connections (clients, or a mesh peer) that came from
// public addresses, so through the router's forward and whatever lies
// beyond it. A connection from the LAN proves nothing of the kind and is
// only counted apart.
type Reach struct {
	// Clients is how many distinct public addresses connected since the
	// relay started (at most MaxReachAddrs are told apart).
	Clients int       `json:"clients"`
	Last    time.Time `json:"last,omitzero"`
	// LastFrom is the newest such address, masked to its /24 or /48
	// because the page is not the place for people's addresses, e.g.
	// "198.51.100.0/24".
	LastFrom string `json:"last_from,omitempty"`
	// LANConnections counts connections from private, loopback or
	// CGNAT/tailnet addresses, which do not count as evidence.
	LANConnections int64 `json:"lan_connections"`
}

// MaxReachAddrs bounds the memory the reach log takes.
const MaxReachAddrs = 1024

// reachLog collects Reach from the connections derpserver takes.
type reachLog struct {
	now func() time.Time

	mu       sync.Mutex
	seen     map[netip.Addr]bool
	last     time.Time
	lastFrom netip.Addr
	lan      int64
}

func newReachLog(now func() time.Time) *reachLog {
	return &reachLog{now: now, seen: map[netip.Addr]bool{}}
}

// note records a DERP connection from remote (an http.Request's
// RemoteAddr, "ip:port").
func (r *reachLog) note(remote string) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return
	}
	a := ap.Addr().Unmap().WithZone("")
	r.mu.Lock()
	defer r.mu.Unlock()
	if !fromInternet(a) {
		r.lan++
		return
	}
	if len(r.seen) < MaxReachAddrs {
		r.seen[a] = true
	}
	r.last, r.lastFrom = r.now(), a
}

func (r *reachLog) status() Reach {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Reach{Clients: len(r.seen), Last: r.last, LANConnections: r.lan}
	if r.lastFrom.IsValid() {
		st.LastFrom = maskAddr(r.lastFrom)
	}
	return st
}

// fromInternet: a public address, one the relay's hostname could point
// at (ddns's rule), or a Cloudflare WARP user's.
func fromInternet(a netip.Addr) bool {
	c := ipclass.Check(a)
	return c == ipclass.OK || c == ipclass.Cloudflare
}

func maskAddr(a netip.Addr) string {
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	return p.String()
}
