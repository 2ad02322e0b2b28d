package portmap

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// NAT-PMP (RFC 6886): IPv4 only, one mapping per request, TCP and UDP
// through separate opcodes. Apple routers and most miniupnpd-based ones
// (OpenWrt) speak it.

const (
	pmpVersion = 0
	pmpOpAddr  = 0 // external address request
	pmpOpUDP   = 1
	pmpOpTCP   = 2
	pmpReply   = 128
)

// pmpResult names NAT-PMP's result codes (RFC 6886 section 3.5).
func pmpResult(code uint16) string {
	switch code {
	case 1:
		return "unsupported version (1)"
	case 2:
		return "not authorized or refused (2): the router has NAT-PMP switched off or forbids this port"
	case 3:
		return "network failure (3): the router has no public WAN address (none yet, or a private or CGNAT one)"
	case 4:
		return "out of resources (4)"
	case 5:
		return "unsupported opcode (5)"
	}
	return fmt.Sprintf("result code %d", code)
}

// pmpRefused is a NAT-PMP answer with a non-zero result code.
type pmpRefused struct{ code uint16 }

func (e pmpRefused) Error() string { return "refused: " + pmpResult(e.code) }

func pmpOpcode(proto string) byte {
	if proto == "tcp" {
		return pmpOpTCP
	}
	return pmpOpUDP
}

// natpmpMap asks gw to map internal port p.Port to external port
// p.Port for lifetime (0 deletes the mapping). It returns the granted
// external port, lifetime and the router's epoch.
func natpmpMap(ctx context.Context, n Net, gw netip.AddrPort, proto string, port uint16, lifetime time.Duration, timeout time.Duration) (granted pxpGrant, err error) {
	c, self, err := dialPxP(ctx, n, gw)
	if err != nil {
		return granted, err
	}
	defer c.Close()
	granted.internal = netip.AddrPortFrom(self, port)

	// The external address first: the mapping response does not carry it.
	err = exchange(ctx, c, gw, []byte{pmpVersion, pmpOpAddr}, timeout, func(b []byte) (bool, error) {
		if len(b) < 12 || b[0] != pmpVersion || b[1] != pmpReply|pmpOpAddr {
			return false, nil
		}
		if code := binary.BigEndian.Uint16(b[2:4]); code != 0 {
			return true, pmpRefused{code}
		}
		granted.epoch = binary.BigEndian.Uint32(b[4:8])
		granted.external = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[8:12])), 0)
		return true, nil
	})
	if err != nil {
		return granted, err
	}

	req := make([]byte, 12)
	req[0], req[1] = pmpVersion, pmpOpcode(proto)
	binary.BigEndian.PutUint16(req[4:], port)
	suggested := port
	if lifetime == 0 {
		suggested = 0 // RFC 6886 section 3.4: a deletion suggests port 0
	}
	binary.BigEndian.PutUint16(req[6:], suggested)
	binary.BigEndian.PutUint32(req[8:], uint32(lifetime/time.Second))
	err = exchange(ctx, c, gw, req, timeout, func(b []byte) (bool, error) {
		if len(b) < 16 || b[0] != pmpVersion || b[1] != pmpReply|pmpOpcode(proto) || binary.BigEndian.Uint16(b[8:10]) != port {
			return false, nil
		}
		if code := binary.BigEndian.Uint16(b[2:4]); code != 0 {
			return true, pmpRefused{code}
		}
		granted.epoch = binary.BigEndian.Uint32(b[4:8])
		granted.external = netip.AddrPortFrom(granted.external.Addr(), binary.BigEndian.Uint16(b[10:12]))
		granted.lifetime = time.Duration(binary.BigEndian.Uint32(b[12:16])) * time.Second
		return true, nil
	})
	return granted, err
}

// pxpGrant is what a PCP or NAT-PMP server granted.
type pxpGrant struct {
	internal netip.AddrPort // the box's address and port as the router sees them
	external netip.AddrPort
	lifetime time.Duration
	epoch    uint32 // the server's seconds since its start: a drop means it restarted
}
