package detect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"tailscale.com/net/stun"
)

// STUNAnswer is what one STUN server said about the socket's public
// address.
type STUNAnswer struct {
	Server netip.AddrPort // e.g. 198.51.100.1:3478
	Mapped netip.AddrPort // the address and port the server saw; invalid on error
	Err    error
}

// errNoAnswer is the error of a server that did not answer in time.
var errNoAnswer = errors.New("no answer")

// QuerySTUN sends a binding request from pc to every server and collects
// the mapped addresses. All requests leave from the same socket, so
// different mapped ports mean the NAT maps by destination.
//
// Each server gets its own transaction ID. tailscale.com/net/stun's
// ParseResponse does not compare IDs, so this function does: a response
// whose ID belongs to no request for that server (a stale or spoofed
// packet) is dropped and does not count as an answer. Requests are resent
// with backoff (250 ms, 500 ms, 1 s, ...) until every server answered or
// timeout passed.
func QuerySTUN(ctx context.Context, pc net.PacketConn, servers []netip.AddrPort, timeout time.Duration) []STUNAnswer {
	answers := make([]STUNAnswer, len(servers))
	txs := make(map[stun.TxID]int, len(servers)) // txID → index in servers
	pending := 0
	for i, s := range servers {
		answers[i] = STUNAnswer{Server: s, Err: errNoAnswer}
		tx := stun.NewTxID()
		txs[tx] = i
		pending++
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	send := func() {
		for tx, i := range txs {
			if answers[i].Err != errNoAnswer {
				continue
			}
			if _, err := pc.WriteTo(stun.Request(tx), net.UDPAddrFromAddrPort(servers[i])); err != nil {
				answers[i].Err = fmt.Errorf("sending to %v: %w", servers[i], err)
				pending--
			}
		}
	}
	send()
	buf := make([]byte, 1500)
	wait := 250 * time.Millisecond
	nextSend := time.Now().Add(wait)
	for pending > 0 && ctx.Err() == nil {
		now := time.Now()
		if !now.Before(deadline) {
			break
		}
		if !now.Before(nextSend) {
			send()
			wait *= 2
			nextSend = now.Add(wait)
		}
		rd := nextSend
		if deadline.Before(rd) {
			rd = deadline
		}
		pc.SetReadDeadline(rd)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				break
			}
			// An ICMP error surfaces here on some systems; keep
			// waiting for the other servers until the deadline.
			continue
		}
		tx, mapped, err := stun.ParseResponse(buf[:n])
		if err != nil {
			continue // not a STUN success response
		}
		i, ok := txs[tx]
		if !ok || answers[i].Err != errNoAnswer {
			continue // unknown or repeated transaction ID
		}
		if fa, ok := from.(*net.UDPAddr); !ok || fa.AddrPort().Addr().Unmap() != servers[i].Addr().Unmap() {
			continue // right ID from the wrong address
		}
		answers[i].Mapped = netip.AddrPortFrom(mapped.Addr().Unmap(), mapped.Port())
		answers[i].Err = nil
		pending--
	}
	pc.SetReadDeadline(time.Time{})
	return answers
}
