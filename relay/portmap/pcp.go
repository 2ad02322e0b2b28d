package portmap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// PCP (RFC 6887), NAT-PMP's successor: the same port, IPv4 and IPv6, and
// one MAP opcode for TCP and UDP. Over IPv6 a MAP opens an inbound
// pinhole in the router's firewall for the box's own address (no
// translation), which is what a home line with public IPv6 but a closed
// IPv6 firewall needs.

const (
	pcpVersion   = 2
	pcpOpMap     = 1
	pcpReply     = 0x80
	pcpHeaderLen = 24
	pcpMapLen    = 36

	pcpOptPreferFailure = 2

	pcpUnsuppVersion = 1
	pcpUnsuppOption  = 5
	pcpCannotExt     = 11
)

// pcpResult names PCP's result codes (RFC 6887 section 7.4).
func pcpResult(code byte) string {
	names := map[byte]string{
		1:  "UNSUPP_VERSION",
		2:  "NOT_AUTHORIZED: the router has PCP switched off or forbids this mapping",
		3:  "MALFORMED_REQUEST",
		4:  "UNSUPP_OPCODE",
		5:  "UNSUPP_OPTION",
		6:  "MALFORMED_OPTION",
		7:  "NETWORK_FAILURE: the router has no public WAN address (none yet, or a private or CGNAT one)",
		8:  "NO_RESOURCES",
		9:  "UNSUPP_PROTOCOL",
		10: "USER_EX_QUOTA: the router's limit of mappings per device is reached",
		11: "CANNOT_PROVIDE_EXTERNAL: the router will not give this external port (taken, or against its rules)",
		12: "ADDRESS_MISMATCH: a NAT between the box and the router",
		13: "EXCESSIVE_REMOTE_PEERS",
	}
	if n, ok := names[code]; ok {
		return fmt.Sprintf("%s (%d)", n, code)
	}
	return fmt.Sprintf("result code %d", code)
}

// pcpRefused is a PCP answer with a non-zero result code.
type pcpRefused struct{ code byte }

func (e pcpRefused) Error() string { return "refused: " + pcpResult(e.code) }

// errPMPOnly: the server answered a PCP request the way a NAT-PMP-only
// server does (RFC 6887 section 9).
var errPMPOnly = errors.New("the router speaks NAT-PMP, not PCP (it answered with NAT-PMP's \"unsupported version\")")

func pcpProto(proto string) byte {
	if proto == "tcp" {
		return 6
	}
	return 17
}

// pcp16 is an address in PCP's 128-bit form (IPv4-mapped for IPv4).
func pcp16(a netip.Addr) [16]byte {
	if a.Is4() {
		return netip.AddrFrom16(netip.AddrFrom4(a.As4()).As16()).As16()
	}
	return a.As16()
}

// pcpMap sends a MAP request for proto/port to server (the router's
// address on the PCP port). For IPv4 it asks for the external port equal
// to the internal one and, with PREFER_FAILURE, for nothing else; for
// IPv6 it asks for a pinhole to the box's own address. lifetime 0 deletes
// the mapping. nonce identifies the box's mappings to the server: the
// same nonce renews or deletes them, even after a restart.
func pcpMap(ctx context.Context, n Net, server netip.AddrPort, nonce [12]byte, proto string, port uint16, lifetime time.Duration, timeout time.Duration) (pxpGrant, error) {
	c, self, err := dialPxP(ctx, n, server)
	if err != nil {
		return pxpGrant{}, err
	}
	defer c.Close()
	g, err := pcpExchange(ctx, c, server, self, nonce, proto, port, lifetime, timeout, lifetime > 0)
	var r pcpRefused
	if errors.As(err, &r) && r.code == pcpUnsuppOption {
		// A server that does not know PREFER_FAILURE: ask without it
		// and check the port ourselves.
		g, err = pcpExchange(ctx, c, server, self, nonce, proto, port, lifetime, timeout, false)
	}
	return g, err
}

func pcpExchange(ctx context.Context, c net.Conn, server netip.AddrPort, self netip.Addr, nonce [12]byte, proto string, port uint16, lifetime, timeout time.Duration, preferFailure bool) (pxpGrant, error) {
	req := make([]byte, pcpHeaderLen+pcpMapLen, pcpHeaderLen+pcpMapLen+4)
	req[0], req[1] = pcpVersion, pcpOpMap
	binary.BigEndian.PutUint32(req[4:], uint32(lifetime/time.Second))
	client := pcp16(self)
	copy(req[8:24], client[:])
	op := req[pcpHeaderLen:]
	copy(op[0:12], nonce[:])
	op[12] = pcpProto(proto)
	binary.BigEndian.PutUint16(op[16:], port)
	binary.BigEndian.PutUint16(op[18:], port)
	// The suggested external address: "any IPv4" (::ffff:0.0.0.0) behind
	// a NAT, the box's own address for an IPv6 pinhole.
	ext := pcp16(netip.IPv4Unspecified())
	if self.Is6() {
		ext = client
	}
	copy(op[20:36], ext[:])
	if preferFailure {
		req = append(req, pcpOptPreferFailure, 0, 0, 0)
	}
	g := pxpGrant{internal: netip.AddrPortFrom(self, port)}
	err := exchange(ctx, c, server, req, timeout, func(b []byte) (bool, error) {
		if len(b) >= 4 && b[0] == pmpVersion && binary.BigEndian.Uint16(b[2:4]) == pcpUnsuppVersion {
			return true, errPMPOnly
		}
		if len(b) < pcpHeaderLen || b[0] != pcpVersion || b[1] != pcpReply|pcpOpMap {
			return false, nil
		}
		if b[3] != 0 && len(b) < pcpHeaderLen+pcpMapLen {
			// An error answer may come without the opcode data.
			return true, pcpRefused{b[3]}
		}
		if len(b) < pcpHeaderLen+pcpMapLen || !bytes.Equal(b[pcpHeaderLen:pcpHeaderLen+12], nonce[:]) ||
			b[pcpHeaderLen+12] != pcpProto(proto) || binary.BigEndian.Uint16(b[pcpHeaderLen+16:]) != port {
			return false, nil // an answer to another request
		}
		if b[3] != 0 {
			return true, pcpRefused{b[3]}
		}
		g.lifetime = time.Duration(binary.BigEndian.Uint32(b[4:8])) * time.Second
		g.epoch = binary.BigEndian.Uint32(b[8:12])
		o := b[pcpHeaderLen:]
		extAddr := netip.AddrFrom16([16]byte(o[20:36])).Unmap()
		g.external = netip.AddrPortFrom(extAddr, binary.BigEndian.Uint16(o[18:20]))
		return true, nil
	})
	return g, err
}
