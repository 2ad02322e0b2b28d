package detect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// NATPMPPort is the port a NAT-PMP (RFC 6886) gateway listens on.
const NATPMPPort = 5351

// GatewayExternalIPv4 asks the gateway gw for its WAN address with a
// NAT-PMP "external address" request (opcode 0), which creates no port
// mapping. Behind carrier-grade NAT the answer is in 100.64.0.0/10; behind
// a second home router it is a private address. Routers that do not speak
// NAT-PMP simply do not answer, which is an error here and no signal
// either way.
func GatewayExternalIPv4(ctx context.Context, d Dialer, gw netip.AddrPort, timeout time.Duration) (netip.Addr, error) {
	c, err := d.DialContext(ctx, "udp4", gw.String())
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	wait := 250 * time.Millisecond
	buf := make([]byte, 64)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if _, err := c.Write([]byte{0, 0}); err != nil {
			return netip.Addr{}, fmt.Errorf("NAT-PMP request to %v: %w", gw, err)
		}
		rd := time.Now().Add(wait)
		if rd.After(deadline) {
			rd = deadline
		}
		c.SetReadDeadline(rd)
		wait *= 2
		for {
			n, err := c.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return netip.Addr{}, fmt.Errorf("NAT-PMP answer from %v: %w", gw, err)
			}
			if a, err := parseNATPMP(buf[:n]); err == nil {
				return a, nil
			} else if errors.Is(err, errNATPMPRefused) {
				return netip.Addr{}, err
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("no NAT-PMP answer from %v", gw)
}

var errNATPMPRefused = errors.New("the gateway refused the NAT-PMP request")

func parseNATPMP(b []byte) (netip.Addr, error) {
	if len(b) < 12 || b[0] != 0 || b[1] != 128 {
		return netip.Addr{}, errors.New("not a NAT-PMP external address response")
	}
	if code := binary.BigEndian.Uint16(b[2:4]); code != 0 {
		return netip.Addr{}, fmt.Errorf("%w (result code %d)", errNATPMPRefused, code)
	}
	return netip.AddrFrom4([4]byte(b[8:12])), nil
}

// natpmpAddr is gw on the NAT-PMP port, or port if it is not zero.
func natpmpAddr(gw netip.Addr, port uint16) netip.AddrPort {
	if port == 0 {
		port = NATPMPPort
	}
	return netip.AddrPortFrom(gw, port)
}
