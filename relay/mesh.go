package relay

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/derp/derpserver"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

// MeshPeer is another DERP server of the region, as derper's --mesh-with
// names one: Host is what clients dial (and what its certificate must
// name), DialHost an optional other address to reach it by.
//
// How the peer's TLS certificate is checked: with CertName empty, as
// derper does, against the system's CAs (plus Let's Encrypt's roots
// built into tailscale.com) for Host, which suits a cloud derper or a box
// with an ACME certificate. A homederp box with a self-signed certificate
// is pinned instead: CertName is the "sha256-raw:<hex>" from that box's
// DERP map, checked exactly as clients check it (hash and host name). A
// peer's certificate is never accepted unchecked outside tests: the mesh
// key travels to whoever answers, and with it the right to watch every
// client of the region.
type MeshPeer struct {
	Host     string // e.g. "derp2.example.com:12345" (port 443 if omitted)
	DialHost string // e.g. "192.168.1.20"; "" dials Host
	CertName string // e.g. "sha256-raw:3f5c…"; "" verifies through CAs

	// InsecureForTests skips certificate verification. Tests only.
	InsecureForTests bool
}

// ParseMeshPeer parses derper's --mesh-with element,
// "host[:port][/dialhost]" (spec.ParseMeshWith).
func ParseMeshPeer(s string) (MeshPeer, error) {
	m, err := spec.ParseMeshWith(s)
	if err != nil {
		return MeshPeer{}, fmt.Errorf("mesh peer: %w", err)
	}
	return MeshPeer{Host: m.Host, DialHost: m.DialHost}, nil
}

func (p MeshPeer) String() string {
	if p.DialHost != "" {
		return p.Host + "/" + p.DialHost
	}
	return p.Host
}

func (p MeshPeer) validate() error {
	if _, err := spec.ParseMeshWith(p.String()); err != nil {
		return fmt.Errorf("mesh peer: %w", err)
	}
	if c := p.CertName; c != "" {
		if err := spec.CheckPin(c); err != nil {
			return fmt.Errorf("mesh peer %q: certificate pin: %w", p.String(), err)
		}
	}
	return nil
}

// MeshStatus is the state of the link to one mesh peer.
type MeshStatus struct {
	Peer      string // as configured, e.g. "derp2.example.com:12345/192.168.1.20"
	Connected bool   // the watch connection is up
	Self      bool   // the entry is this relay itself and is skipped
	Clients   int    // clients of the peer this relay forwards to
	Error     string // the last connection error; "" once connected
}

// mesh runs the outgoing links of one derpserver to its mesh peers. Each
// link is a derphttp client with the mesh key that watches the peer's
// connections (as derper's mesh.go does) and registers itself as the
// packet forwarder for every client present there.
type mesh struct {
	d    *derpserver.Server
	logf logger.Logf

	mu    sync.Mutex
	links map[MeshPeer]*meshLink
	order []MeshPeer
}

type meshLink struct {
	peer   MeshPeer
	c      *derphttp.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	present map[key.NodePublic]bool // clients we forward to through c
	self    bool
	lastErr string
}

func newMesh(d *derpserver.Server, logf logger.Logf) *mesh {
	return &mesh{d: d, logf: logf, links: map[MeshPeer]*meshLink{}}
}

// update makes the running links match peers.
func (m *mesh) update(peers []MeshPeer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[MeshPeer]bool{}
	for _, p := range peers {
		want[p] = true
	}
	for p, l := range m.links {
		if !want[p] {
			l.stop(m.d)
			delete(m.links, p)
		}
	}
	m.order = m.order[:0]
	for _, p := range peers {
		if m.links[p] == nil {
			l, err := m.start(p)
			if err != nil {
				m.logf("relay: mesh peer %s: %v", p, err)
				l = &meshLink{peer: p, lastErr: err.Error(), done: make(chan struct{})}
				close(l.done)
			}
			m.links[p] = l
		}
		if !slices.Contains(m.order, p) {
			m.order = append(m.order, p)
		}
	}
}

func (m *mesh) close() { m.update(nil) }

func (m *mesh) start(p MeshPeer) (*meshLink, error) {
	host, port, err := spec.SplitMeshHost(p.Host)
	if err != nil {
		return nil, err
	}
	// derphttp's own reconnect messages come every few seconds while a
	// peer is down; keep a couple a minute.
	logf := logger.RateLimitedFn(logger.WithPrefix(m.logf, fmt.Sprintf("relay: mesh %s: ", p)), time.Minute, 2, 20)
	netMon := netmon.NewStatic()
	var c *derphttp.Client
	if p.CertName == "" && !p.InsecureForTests {
		// derper's way: a URL client, verified through CAs.
		c, err = derphttp.NewClient(m.d.PrivateKey(), "https://"+p.Host+"/derp", logf, netMon)
		if err != nil {
			return nil, err
		}
		if p.DialHost != "" {
			var d net.Dialer
			dialHost := strings.Trim(p.DialHost, "[]")
			c.SetURLDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, net.JoinHostPort(dialHost, strconv.Itoa(port)))
			})
		}
	} else {
		// A region client applies CertName and InsecureForTests the way
		// tailscaled does for the map's nodes.
		node := &tailcfg.DERPNode{
			Name:             "mesh",
			RegionID:         1,
			HostName:         host,
			DERPPort:         port,
			CertName:         p.CertName,
			InsecureForTests: p.InsecureForTests,
		}
		c = derphttp.NewRegionClient(m.d.PrivateKey(), logf, netMon, func() *tailcfg.DERPRegion {
			n := *node
			if p.DialHost != "" && !resolveInto(&n, strings.Trim(p.DialHost, "[]")) {
				return nil
			}
			return &tailcfg.DERPRegion{RegionID: 1, RegionCode: "mesh", Nodes: []*tailcfg.DERPNode{&n}}
		})
	}
	c.MeshKey = m.d.MeshKey()
	c.WatchConnectionChanges = true

	ctx, cancel := context.WithCancel(context.Background())
	l := &meshLink{peer: p, c: c, cancel: cancel, done: make(chan struct{}), present: map[key.NodePublic]bool{}}
	add := func(pm derp.PeerPresentMessage) {
		l.mu.Lock()
		l.present[pm.Key] = true
		l.lastErr = ""
		l.mu.Unlock()
		m.d.AddPacketForwarder(pm.Key, c)
	}
	remove := func(pg derp.PeerGoneMessage) {
		l.mu.Lock()
		delete(l.present, pg.Peer)
		l.mu.Unlock()
		m.d.RemovePacketForwarder(pg.Peer, c)
	}
	notifyError := func(err error) {
		l.mu.Lock()
		l.lastErr = err.Error()
		l.mu.Unlock()
	}
	go func() {
		defer close(l.done)
		c.RunWatchConnectionLoop(ctx, m.d.PublicKey(), logf, add, remove, notifyError)
		if ctx.Err() == nil {
			// It returns early only on connecting to itself; drop
			// that connection rather than keep it open forever as
			// derper does.
			c.Close()
			l.mu.Lock()
			l.self = true
			l.mu.Unlock()
		}
	}()
	return l, nil
}

// resolveInto points n at dialHost: an IP literal directly, a name
// through DNS (looked up on every connection attempt, like a client
// resolving HostName).
func resolveInto(n *tailcfg.DERPNode, dialHost string) bool {
	n.IPv4, n.IPv6 = "none", "none"
	if ip, err := netip.ParseAddr(dialHost); err == nil {
		if ip.Is4() {
			n.IPv4 = ip.String()
		} else {
			n.IPv6 = ip.String()
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", dialHost)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		ip = ip.Unmap()
		if ip.Is4() && n.IPv4 == "none" {
			n.IPv4 = ip.String()
		}
		if ip.Is6() && n.IPv6 == "none" {
			n.IPv6 = ip.String()
		}
	}
	return true
}

// stop ends the link and withdraws every forwarder it registered.
func (l *meshLink) stop(d *derpserver.Server) {
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.c.Close()
	<-l.done
	l.mu.Lock()
	keys := l.present
	l.present = nil
	l.mu.Unlock()
	for k := range keys {
		d.RemovePacketForwarder(k, l.c)
	}
}

func (m *mesh) status() []MeshStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []MeshStatus
	for _, p := range m.order {
		l := m.links[p]
		if l == nil {
			continue
		}
		l.mu.Lock()
		st := MeshStatus{Peer: p.String(), Self: l.self, Clients: len(l.present), Error: l.lastErr}
		l.mu.Unlock()
		if l.c != nil && !st.Self {
			if _, err := l.c.LocalAddr(); err == nil {
				st.Connected = true
				st.Error = ""
			}
		}
		out = append(out, st)
	}
	return out
}
