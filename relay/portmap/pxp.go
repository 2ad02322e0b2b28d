package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// PCP (RFC 6887) and NAT-PMP (RFC 6886) share the router's UDP port 5351
// and the same exchange: one request datagram, retransmitted with a
// doubling wait, answered by one response datagram.

// PxPPort is the port PCP and NAT-PMP servers listen on.
const PxPPort = 5351

// errNoAnswer is a request nobody answered: the router does not speak
// the protocol, or speaks it elsewhere.
type errNoAnswer struct {
	server  netip.AddrPort
	timeout time.Duration
	refused bool // an ICMP "port unreachable" came back
}

func (e errNoAnswer) Error() string {
	if e.refused {
		return fmt.Sprintf("no answer from %v: nothing listens there (port unreachable)", e.server)
	}
	return fmt.Sprintf("no answer from %v within %v", e.server, e.timeout)
}

// exchange sends req to server over c (a connected UDP socket) until
// parse accepts a response or timeout passes. The first wait is 250 ms,
// doubling, as both RFCs ask. parse returns ok=false for a datagram that
// is not the answer (a stray or late packet), which is skipped.
func exchange(ctx context.Context, c net.Conn, server netip.AddrPort, req []byte, timeout time.Duration, parse func([]byte) (ok bool, err error)) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	wait := 250 * time.Millisecond
	buf := make([]byte, 1100) // PCP's maximum message size
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if _, err := c.Write(req); err != nil {
			return fmt.Errorf("sending to %v: %w", server, err)
		}
		rd := minTime(time.Now().Add(wait), deadline)
		c.SetReadDeadline(rd)
		wait *= 2
		for {
			n, err := c.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				// ICMP port unreachable surfaces as "connection
				// refused": nothing listens there.
				return errNoAnswer{server, timeout, true}
			}
			if ok, err := parse(buf[:n]); ok || err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errNoAnswer{server: server, timeout: timeout}
}

// dialPxP opens a UDP socket connected to the router's PCP/NAT-PMP port
// and returns it with the local address the router sees.
func dialPxP(ctx context.Context, n Net, server netip.AddrPort) (net.Conn, netip.Addr, error) {
	network := "udp4"
	if server.Addr().Is6() {
		network = "udp6"
	}
	c, err := n.DialContext(ctx, network, server.String())
	if err != nil {
		return nil, netip.Addr{}, err
	}
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		c.Close()
		return nil, netip.Addr{}, fmt.Errorf("unexpected local address %v", c.LocalAddr())
	}
	return c, ua.AddrPort().Addr().Unmap().WithZone(""), nil
}
