// Package detect finds the home line's public addresses from several
// independent sources and refuses to guess.
//
// IPv4 comes from STUN binding requests to at least two servers (sent from
// one socket) and a DNS "whoami" query, preferably over DNS over TLS. The
// sources must agree; if too few answer or any disagree, the result is
// Unknown, never an empty or partial address — the failure that made other
// updaters delete or blank their users' records. IPv6 is the box's own
// stable global address (never a temporary privacy address), confirmed by
// STUN over UDP from that address.
//
// It also recognises what makes a correct record useless: carrier-grade NAT
// (the router's WAN address, asked with NAT-PMP, is in 100.64.0.0/10),
// double NAT (a private WAN address), endpoint-dependent NAT (the mapping
// varies by destination), no IPv4 route at all, and the box's own tailnet
// addresses, which are never published.
package detect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/homederp/homederp/ddns/ipclass"
	"github.com/homederp/homederp/internal/usermsg"
	"tailscale.com/net/netmon"
)

// Dialer opens connections; *net.Dialer is one. Test beds pass a dialer
// that opens its sockets inside a network namespace.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Net opens connections and unconnected UDP sockets.
type Net interface {
	Dialer
	ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error)
}

// SystemNet is the host's own network stack.
type SystemNet struct{}

func (SystemNet) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

func (SystemNet) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, network, address)
}

// Default public sources. Several operators, so that no single one can
// blank the record.
var (
	DefaultSTUN = []string{
		"stun.cloudflare.com:3478",
		"stun.l.google.com:19302",
		"stun1.l.google.com:19302",
	}
	DefaultWhoami = []WhoamiServer{
		{Addr: netip.MustParseAddrPort("1.1.1.1:853"), TLSName: "cloudflare-dns.com"},
		{Addr: netip.MustParseAddrPort("1.0.0.1:853"), TLSName: "cloudflare-dns.com"},
	}
)

// MinSTUN is how many STUN servers must answer (and agree) for an IPv4
// address to count as known.
const MinSTUN = 2

// Detector finds the public addresses. The zero value uses the public
// default servers and the host's network; tests set every field to
// addresses inside their own namespaces or on loopback. It remembers what
// the last full detection learnt for ProbeIPv4, so it must not be copied
// after first use.
type Detector struct {
	STUN   []string       // "host:port"; nil = DefaultSTUN
	Whoami []WhoamiServer // IPv4 whoami servers, tried in order; nil = DefaultWhoami

	Net Net // nil = SystemNet
	// LookupNetIP resolves STUN server names ("ip4" or "ip6"); nil = the
	// system resolver. Servers given as IP literals need no lookup.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
	// Addrs lists the box's IPv6 addresses; nil = SystemAddrs.
	Addrs func() ([]IfAddr, error)
	// Gateway returns the default IPv4 gateway to ask over NAT-PMP for its
	// WAN address; nil = the default route's gateway.
	Gateway    func() (netip.Addr, bool)
	NATPMPPort uint16 // 0 = 5351

	// AddrEvents calls changed after every change of the box's addresses
	// until ctx is done; nil = SystemAddrEvents.
	AddrEvents func(ctx context.Context, changed func()) error

	TLSConfig *tls.Config   // roots for DoT; nil = the system roots
	Timeout   time.Duration // per query; 0 = 4s
	Logf      func(format string, args ...any)

	// What the last full detection learnt, for ProbeIPv4.
	mu        sync.Mutex
	servers4  []netip.AddrPort // the IPv4 STUN servers, resolved
	router    netip.AddrPort   // the router that answered NAT-PMP; invalid if none did
	nextProbe int              // index into servers4 of the next probe
}

// State says what is known about one address family.
type State int

const (
	// Unknown: the sources failed or disagreed. Nothing may be written.
	Unknown State = iota
	// Known: Addr is the line's public address.
	Known
	// None: the line has no usable public address of this family (no
	// route, CGNAT, only temporary IPv6 addresses).
	None
)

func (s State) String() string {
	switch s {
	case Known:
		return "known"
	case None:
		return "none"
	}
	return "unknown"
}

// Observation is what one source said, for logs and the status page.
type Observation struct {
	Source string     // e.g. "stun 198.51.100.1:3478"
	Addr   netip.Addr // the address it reported; invalid on error
	Port   uint16     // the mapped port (STUN)
	Err    string     // why it gave no address
}

func (o Observation) String() string {
	if o.Err != "" {
		return o.Source + ": " + o.Err
	}
	return fmt.Sprintf("%s: %v", o.Source, o.Addr)
}

// Family is the result for IPv4 or IPv6.
type Family struct {
	State State
	Addr  netip.Addr // valid iff State == Known
	// Problem explains Unknown or None in plain words.
	Problem string
	// Warnings are things the user should fix even though Addr is known,
	// in plain words.
	Warnings     []string
	Observations []Observation
	// Msgs are Problem and Warnings as the web UI translates them
	// (internal/usermsg), by their English.
	Msgs map[string]usermsg.Msg

	CGNAT         bool // the router's WAN address is in 100.64.0.0/10
	DoubleNAT     bool // the router's WAN address is private
	MappingVaries bool // STUN servers saw different ports from one socket

	// RouterWAN is the router's WAN address over NAT-PMP (IPv4), e.g.
	// 203.0.113.9 or 100.64.0.10; invalid if the router did not answer.
	RouterWAN netip.Addr
	// Stable are the box's stable global addresses (IPv6), in the order
	// they were tried.
	Stable []netip.Addr
}

// Result holds both families.
type Result struct {
	IPv4, IPv6 Family
}

func (d *Detector) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return 4 * time.Second
}

func (d *Detector) net() Net {
	if d.Net != nil {
		return d.Net
	}
	return SystemNet{}
}

func (d *Detector) logf(format string, args ...any) {
	if d.Logf != nil {
		d.Logf(format, args...)
	}
}

// Detect looks up the families asked for, concurrently.
func (d *Detector) Detect(ctx context.Context, v4, v6 bool) Result {
	var res Result
	var wg sync.WaitGroup
	if v4 {
		wg.Go(func() { res.IPv4 = d.detect4(ctx) })
	}
	if v6 {
		wg.Go(func() { res.IPv6 = d.detect6(ctx) })
	}
	wg.Wait()
	return res
}

// stunServers resolves the configured STUN servers for one family.
func (d *Detector) stunServers(ctx context.Context, fam string) ([]netip.AddrPort, []Observation) {
	list := d.STUN
	if list == nil {
		list = DefaultSTUN
	}
	lookup := d.LookupNetIP
	if lookup == nil {
		lookup = net.DefaultResolver.LookupNetIP
	}
	var out []netip.AddrPort
	var obs []Observation
	for _, s := range list {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			obs = append(obs, Observation{Source: "stun " + s, Err: "not host:port"})
			continue
		}
		pn, err := netip.ParseAddrPort(net.JoinHostPort("0.0.0.0", port))
		if err != nil {
			obs = append(obs, Observation{Source: "stun " + s, Err: "bad port"})
			continue
		}
		var addr netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addr = a.Unmap()
		} else {
			lctx, cancel := context.WithTimeout(ctx, d.timeout())
			as, err := lookup(lctx, "ip"+fam, host)
			cancel()
			if err != nil || len(as) == 0 {
				obs = append(obs, Observation{Source: "stun " + s, Err: fmt.Sprintf("cannot resolve %s: %v", host, err)})
				continue
			}
			addr = as[0].Unmap()
		}
		if (fam == "6") != addr.Is6() {
			continue // a server of the other family
		}
		out = append(out, netip.AddrPortFrom(addr, pn.Port()))
	}
	return out, obs
}

func (d *Detector) detect4(ctx context.Context) Family {
	var f Family
	servers, obs := d.stunServers(ctx, "4")
	f.Observations = append(f.Observations, obs...)
	d.mu.Lock()
	d.servers4 = servers
	d.mu.Unlock()

	var stunAnswers []STUNAnswer
	var whoAddr netip.Addr
	var whoErrs []error
	var wg sync.WaitGroup
	wg.Go(func() {
		pc, err := d.net().ListenPacket(ctx, "udp4", ":0")
		if err != nil {
			for _, s := range servers {
				stunAnswers = append(stunAnswers, STUNAnswer{Server: s, Err: err})
			}
			return
		}
		defer pc.Close()
		stunAnswers = QuerySTUN(ctx, pc, servers, d.timeout())
	})
	wg.Go(func() {
		whoami := d.Whoami
		if whoami == nil {
			whoami = DefaultWhoami
		}
		for _, s := range whoami {
			if !s.Addr.Addr().Unmap().Is4() {
				continue
			}
			a, err := Whoami(ctx, d.net(), s, d.TLSConfig, d.timeout())
			if err == nil {
				whoAddr = a
				f.Observations = append(f.Observations, Observation{Source: s.String(), Addr: a})
				return
			}
			whoErrs = append(whoErrs, err)
			f.Observations = append(f.Observations, Observation{Source: s.String(), Err: err.Error()})
		}
	})
	wg.Wait()

	var agreed []netip.Addr
	var ports []uint16
	var stunErrs []error
	for _, a := range stunAnswers {
		o := Observation{Source: "stun " + a.Server.String()}
		if a.Err != nil {
			o.Err = a.Err.Error()
			stunErrs = append(stunErrs, a.Err)
		} else {
			o.Addr, o.Port = a.Mapped.Addr(), a.Mapped.Port()
			agreed = append(agreed, a.Mapped.Addr())
			ports = append(ports, a.Mapped.Port())
		}
		f.Observations = append(f.Observations, o)
	}

	// No IPv4 route at all: every source failed with "network
	// unreachable" before a packet left the box (an IPv6-only line, or
	// DS-Lite before its tunnel is up).
	if len(agreed) == 0 && !whoAddr.IsValid() && len(stunErrs)+len(whoErrs) > 0 && allUnreachable(append(stunErrs, whoErrs...)) {
		f.State = None
		f.problem("detect.no_ipv4_route", "This box has no IPv4 route to the Internet (an IPv6-only line?). The DERP map marks IPv4 as \"none\".", nil)
		return f
	}
	if len(agreed) < MinSTUN {
		f.problem("detect.few_stun", "Only {{.N}} of {{.Of}} STUN servers answered; {{.Min}} must agree before the address is trusted.", map[string]any{"N": len(agreed), "Of": len(servers), "Min": MinSTUN})
		return f
	}
	if !whoAddr.IsValid() {
		f.problem("detect.no_whoami", "No DNS whoami server answered, so the STUN answers could not be cross-checked.", nil)
		return f
	}
	agreed = append(agreed, whoAddr)
	for _, a := range agreed[1:] {
		if a != agreed[0] {
			f.problem("detect.disagree", "The address sources disagree ({{.Seen}}); nothing is written until they agree.", map[string]any{"Seen": summarize(f.Observations)})
			return f
		}
	}
	addr := agreed[0]
	for _, p := range ports[1:] {
		if p != ports[0] {
			f.MappingVaries = true
			f.warn("detect.hard_nat", "Your NAT gives every destination a different port (endpoint-dependent, \"hard\" NAT). Inbound port forwarding to the relay still works, but direct connections between tailnet devices at home will need the relay more often.", nil)
			break
		}
	}
	switch r := ipclass.Check(addr); r {
	case ipclass.OK:
	case ipclass.Shared, ipclass.Private:
		f.State, f.CGNAT = None, r == ipclass.Shared
		f.problem("detect.no_public_ipv4", "The Internet sees this line as {{.Addr}}, which is {{.Why}}: your provider gives you no public IPv4 address. The DERP map marks IPv4 as \"none\".", map[string]any{"Addr": addr.String(), "Why": r})
		return f
	default:
		f.problem("detect.unpublishable", "The sources agree on {{.Addr}}, but that is {{.Why}}; it is not published.", map[string]any{"Addr": addr.String(), "Why": r})
		return f
	}

	d.checkGateway(ctx, &f, addr)
	if f.CGNAT {
		return f
	}
	f.State, f.Addr = Known, addr
	return f
}

// checkGateway asks the default gateway for its WAN address (NAT-PMP) and
// compares it with what the Internet sees.
func (d *Detector) checkGateway(ctx context.Context, f *Family, public netip.Addr) {
	gwf := d.Gateway
	if gwf == nil {
		gwf = func() (netip.Addr, bool) {
			gw, _, ok := netmon.LikelyHomeRouterIP()
			return gw, ok
		}
	}
	gw, ok := gwf()
	var router netip.AddrPort
	defer func() {
		d.mu.Lock()
		d.router = router
		d.mu.Unlock()
	}()
	if !ok || !gw.Is4() {
		return
	}
	wan, err := GatewayExternalIPv4(ctx, d.net(), natpmpAddr(gw, d.NATPMPPort), min(d.timeout(), 2*time.Second))
	if err != nil {
		f.Observations = append(f.Observations, Observation{Source: "router " + gw.String() + " (NAT-PMP)", Err: err.Error()})
		return
	}
	router, f.RouterWAN = natpmpAddr(gw, d.NATPMPPort), wan
	f.Observations = append(f.Observations, Observation{Source: "router " + gw.String() + " (NAT-PMP)", Addr: wan})
	switch {
	case wan == public:
	case ipclass.IsShared(wan):
		f.State, f.CGNAT = None, true
		f.problem("detect.cgnat", "Your provider shares one public IPv4 among many customers (CGNAT): your router's WAN address is {{.WAN}}, and the Internet sees {{.Public}}. Port forwarding cannot make the relay reachable over IPv4. Ask for a public IPv4, use IPv6 only, or host the relay elsewhere. The DERP map marks IPv4 as \"none\".", map[string]any{"WAN": wan.String(), "Public": public.String()})
	case wan.IsPrivate():
		f.DoubleNAT = true
		f.warn("detect.double_nat", "Your router's WAN address is {{.WAN}}, a private address: a second router (NAT) sits between it and the Internet. Forward the DERP and STUN ports on both routers, or put the provider's box in bridge mode.", map[string]any{"WAN": wan.String()})
	default:
		f.warn("detect.nat_beyond", "Your router says its WAN address is {{.WAN}}, but the Internet sees {{.Public}}: another NAT lies beyond your router, and inbound connections may not arrive.", map[string]any{"WAN": wan.String(), "Public": public.String()})
	}
}

func allUnreachable(errs []error) bool {
	for _, err := range errs {
		if !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return false
		}
	}
	return true
}

func summarize(obs []Observation) string {
	var parts []string
	for _, o := range obs {
		if o.Err == "" {
			parts = append(parts, o.String())
		}
	}
	return strings.Join(parts, "; ")
}

// problem sets f.Problem, a sentence of usermsg.Say.
func (f *Family) problem(id, text string, args map[string]any) {
	var m usermsg.Msg
	f.Problem, m = usermsg.Say(id, text, args)
	f.note(f.Problem, m)
}

// warn adds a warning, a sentence of usermsg.Say.
func (f *Family) warn(id, text string, args map[string]any) {
	w, m := usermsg.Say(id, text, args)
	f.Warnings = append(f.Warnings, w)
	f.note(w, m)
}

func (f *Family) note(en string, m usermsg.Msg) {
	if f.Msgs == nil {
		f.Msgs = map[string]usermsg.Msg{}
	}
	f.Msgs[en] = m
}
