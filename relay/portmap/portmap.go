// Package portmap asks the home router to forward the relay's ports to the
// box, over PCP, NAT-PMP or UPnP-IGD, whichever the router answers; opens
// IPv6 firewall pinholes for the box's own address where the router offers
// that (PCP over IPv6, or IGDv2's WANIPv6FirewallControl); renews what it
// got before the lease ends; removes it when it is no longer wanted; and
// says in plain words what each protocol answered.
//
// tailscale.com/net/portmapper, which the project otherwise reuses, maps a
// single UDP port chosen by the router (tailscaled's WireGuard port): it
// cannot map TCP, cannot insist on an external port (the DERP map
// announces the port, so it must be exactly the configured one), opens no
// IPv6 pinholes, has a fixed two-hour lease, and opens its sockets
// without a dialer, so it cannot run inside a test's network namespace.
// Its building blocks for those protocols are unexported. So this package
// speaks PCP and NAT-PMP itself (a few datagrams, RFC 6887 and RFC 6886)
// and UPnP through github.com/huin/goupnp's generated SOAP clients, the
// same library portmapper uses, already part of the pinned tailscale.com
// module graph.
//
// Mappings the box did not create are never touched: a UPnP entry for the
// port with another owner or description is reported and left alone, and
// a PCP mapping is renewed or deleted only with the box's own nonce, kept
// in the state directory with the list of what the box holds, so a
// restarted box can still remove what it made before.
package portmap

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"

	"tailscale.com/tstime"
	"tailscale.com/types/logger"
)

// Net opens the mapper's sockets: the connected UDP sockets to the router's
// PCP/NAT-PMP port and UPnP's HTTP connections (DialContext), and the SSDP
// search socket (ListenPacket). ddns/detect.SystemNet is one; tests pass a
// dialer whose sockets open inside a network namespace.
type Net interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
	ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error)
}

// Protocol names, in the default order they are tried.
const (
	PCP    = "PCP"
	NATPMP = "NAT-PMP"
	UPnP   = "UPnP-IGD"
)

// DefaultProtocols is the order protocols are tried in: PCP first, which
// can insist on the exact external port and knows its mappings by the
// box's nonce; NAT-PMP, its predecessor on the same port; then UPnP-IGD,
// which most routers in Chinese homes speak, and which costs an SSDP
// search and a few HTTP requests.
var DefaultProtocols = []string{PCP, NATPMP, UPnP}

// Port is one port the box wants reachable from the Internet. The
// external port is always the same as the internal one: the DERP map
// announces it.
type Port struct {
	Proto string `json:"proto"` // "tcp" or "udp"
	Port  uint16 `json:"port"`  // e.g. 12345
	What  string `json:"what"`  // e.g. "DERP"; names the mapping on the router
}

// Label names the port for people, e.g. "tcp 12345".
func (p Port) Label() string { return p.Proto + " " + strconv.Itoa(int(p.Port)) }

// Config is what the mapper should hold. It changes with the box's
// configuration (Mapper.Set).
type Config struct {
	// Enabled asks the router for the ports. Off, the mapper removes
	// what it holds and asks the router nothing.
	Enabled bool
	Ports   []Port
	// Hostname is the relay's name, sent as the TLS server name by the
	// hairpin check (which dials the DERP port through the router's
	// public address), e.g. "derp.example.com".
	Hostname string
}

// Options are the mapper's dependencies. Everything but Net may be left
// zero.
type Options struct {
	Net Net
	// Gateway returns the router's LAN address, e.g. 192.168.1.1;
	// nil = the default route's gateway (netmon.LikelyHomeRouterIP).
	Gateway func() (netip.Addr, bool)
	// Gateway6 returns the IPv6 default router to ask PCP for pinholes,
	// e.g. fe80::1%eth0; nil = the default route's gateway.
	Gateway6 func() (netip.Addr, bool)
	// Addr6 returns the box's stable global IPv6 address, the one the
	// AAAA record carries and pinholes open to; nil = none (no pinholes).
	Addr6 func() (netip.Addr, bool)
	// PublicIPv4 returns the line's public IPv4 address as ddns knows it,
	// for the hairpin check when the router grants no mapping (a manual
	// port-forward); nil = none.
	PublicIPv4 func() netip.Addr
	// StateDir keeps portmap.json: the box's PCP nonce and the mappings
	// it holds. "" keeps nothing across restarts.
	StateDir string
	// Lease is the lifetime asked for; the router may grant less. The
	// mapper renews at half the granted lifetime. 0 = DefaultLease.
	Lease time.Duration
	// RetryMin and RetryMax bound the wait after a failed round, which
	// doubles from one to the other; RetryMax is also how often the
	// mapper looks again when nothing needs renewing. 0 = 30 s and 10 min.
	RetryMin, RetryMax time.Duration
	// Timeout bounds one PCP/NAT-PMP exchange and the SSDP search;
	// 0 = 2 s. UPnP's HTTP requests get 5 s each.
	Timeout time.Duration
	// Protocols are tried in this order; nil = DefaultProtocols.
	Protocols []string
	Logf      logger.Logf
	Clock     tstime.Clock // nil = the system clock
}

// DefaultLease is RFC 6886's recommended mapping lifetime.
const DefaultLease = 2 * time.Hour

func (o *Options) fill() {
	if o.Lease == 0 {
		o.Lease = DefaultLease
	}
	if o.RetryMin == 0 {
		o.RetryMin = 30 * time.Second
	}
	if o.RetryMax == 0 {
		o.RetryMax = 10 * time.Minute
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Protocols == nil {
		o.Protocols = DefaultProtocols
	}
	if o.Logf == nil {
		o.Logf = logger.Discard
	}
	if o.Clock == nil {
		o.Clock = tstime.StdClock{}
	}
	if o.Gateway == nil {
		o.Gateway = defaultGateway
	}
	if o.Gateway6 == nil {
		o.Gateway6 = defaultGateway6
	}
}
