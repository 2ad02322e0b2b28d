package detect

import (
	"context"
	"net/netip"
	"time"
)

// ProbeSTUN asks one STUN server, the next in turn on each call, which
// IPv4 address it sees: one small UDP packet each way, where a full
// detection asks several servers per family and a DNS over TLS whoami.
// It uses the servers resolved by the last full detection, so it sends no
// DNS query once there has been one. The Observation's Addr is invalid
// when the server did not answer, which is no signal either way.
//
// One answer is not trusted for a write: the caller compares it with the
// last full detection and runs a new one when they differ.
func (d *Detector) ProbeSTUN(ctx context.Context) Observation {
	d.mu.Lock()
	servers := d.servers4
	d.mu.Unlock()
	if len(servers) == 0 {
		servers, _ = d.stunServers(ctx, "4")
	}
	if len(servers) == 0 {
		return Observation{Source: "stun", Err: "no IPv4 STUN server"}
	}
	d.mu.Lock()
	d.servers4 = servers
	s := servers[d.nextProbe%len(servers)]
	d.nextProbe++
	d.mu.Unlock()
	o := Observation{Source: "stun " + s.String()}
	pc, err := d.net().ListenPacket(ctx, "udp4", ":0")
	if err != nil {
		o.Err = err.Error()
		return o
	}
	defer pc.Close()
	a := QuerySTUN(ctx, pc, []netip.AddrPort{s}, d.timeout())[0]
	if a.Err != nil {
		o.Err = a.Err.Error()
		return o
	}
	o.Addr, o.Port = a.Mapped.Addr(), a.Mapped.Port()
	return o
}

// ProbeRouter asks the router that answered NAT-PMP during the last full
// detection for its WAN address, on the LAN. Without such a router it
// asks nothing and returns an Observation without Source.
func (d *Detector) ProbeRouter(ctx context.Context) Observation {
	d.mu.Lock()
	router := d.router
	d.mu.Unlock()
	if !router.IsValid() {
		return Observation{}
	}
	o := Observation{Source: "router " + router.Addr().String() + " (NAT-PMP)"}
	wan, err := GatewayExternalIPv4(ctx, d.net(), router, min(d.timeout(), 2*time.Second))
	if err != nil {
		o.Err = err.Error()
		return o
	}
	o.Addr = wan
	return o
}

// StableIPv6Addrs lists the box's stable global IPv6 addresses (see
// StableIPv6). It asks only the kernel.
func (d *Detector) StableIPv6Addrs() ([]netip.Addr, error) {
	list := d.Addrs
	if list == nil {
		list = SystemAddrs
	}
	addrs, err := list()
	if err != nil {
		return nil, err
	}
	stable, _ := StableIPv6(addrs)
	return stable, nil
}

// WatchAddrs calls changed after every change of the box's addresses
// until ctx is done, through AddrEvents (nil = SystemAddrEvents). changed
// must not block.
func (d *Detector) WatchAddrs(ctx context.Context, changed func()) error {
	watch := d.AddrEvents
	if watch == nil {
		watch = SystemAddrEvents
	}
	return watch(ctx, changed)
}
