package detect_test

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/detect"
	"github.com/miekg/dns"
	"tailscale.com/net/stun"
)

// The detector's parsers are fuzzed through its own entry points on
// loopback: a raw UDP responder answers each request with the fuzzer's
// bytes (the request's transaction ID or DNS ID copied in, so the bytes
// get past the first check), as a spoofing or broken server on the path
// would, and for STUN and NAT-PMP then with the honest answer.

// responder answers every UDP request on 127.0.0.1 with reply(req).
func responder(tb testing.TB, reply func(req []byte) [][]byte) netip.AddrPort {
	return responderOn(tb, "127.0.0.1:0", reply)
}

// responderOn is responder on a given loopback address, e.g. "[::1]:0".
func responderOn(tb testing.TB, addr string, reply func(req []byte) [][]byte) netip.AddrPort {
	tb.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, p := range reply(buf[:n]) {
				pc.WriteTo(p, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// fuzzInput hands the current fuzz input to the responder goroutine.
type fuzzInput struct{ c chan []byte }

func newFuzzInput() fuzzInput { return fuzzInput{make(chan []byte, 1)} }

// next returns the input of the running iteration, or nil if none waits
// (a retransmission after the iteration took its answer).
func (f fuzzInput) next() []byte {
	select {
	case b := <-f.c:
		return b
	default:
		return nil
	}
}

// set replaces whatever input an earlier iteration left unread.
func (f fuzzInput) set(b []byte) {
	f.next()
	f.c <- b
}

// FuzzSTUNResponse: junk in front of a STUN server's answer never makes
// QuerySTUN fail or report an address the junk did not honestly carry:
// the answer is the junk's mapped address exactly when upstream's parser
// reads the junk as a success response for our transaction, else the
// honest server's.
func FuzzSTUNResponse(f *testing.F) {
	in := newFuzzInput()
	srv := responder(f, func(req []byte) [][]byte {
		tx, err := stun.ParseBindingRequest(req)
		if err != nil {
			return nil
		}
		out := [][]byte{}
		if junk := in.next(); junk != nil {
			if len(junk) >= 20 {
				copy(junk[8:20], tx[:])
			}
			out = append(out, junk)
		}
		return append(out, stun.Response(tx, honestMapped))
	})
	var tx stun.TxID
	f.Add(stun.Response(tx, netip.MustParseAddrPort("203.0.113.9:41641")))
	f.Add(stun.Response(tx, netip.MustParseAddrPort("[2001:db8::9]:41641")))
	f.Add(stun.Request(tx))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, junk []byte) {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		sent := append([]byte{}, junk...)
		in.set(sent)
		a := detect.QuerySTUN(context.Background(), pc, []netip.AddrPort{srv}, 5*time.Second)[0]
		if a.Err != nil {
			t.Fatalf("QuerySTUN: %v; want the honest answer after the junk", a.Err)
		}
		if a.Mapped == honestMapped {
			return
		}
		// The junk was taken: it must be what upstream reads in it.
		if len(sent) < 20 {
			t.Fatalf("mapped %v from %d bytes of junk", a.Mapped, len(sent))
		}
		_, want, err := stun.ParseResponse(sent)
		if err != nil || a.Mapped != netip.AddrPortFrom(want.Addr().Unmap(), want.Port()) {
			t.Fatalf("mapped %v; the junk parses as %v, %v", a.Mapped, want, err)
		}
	})
}

var honestMapped = netip.MustParseAddrPort("198.51.100.7:3478")

// FuzzNATPMPResponse: junk from the gateway before its answer gives either
// the junk's address (a well-formed success response), the refusal it
// carries, or the honest answer; never an address that is not IPv4.
func FuzzNATPMPResponse(f *testing.F) {
	in := newFuzzInput()
	honest := netip.MustParseAddr("100.64.3.4")
	gw := responder(f, func(req []byte) [][]byte {
		if len(req) != 2 || req[0] != 0 || req[1] != 0 {
			return nil
		}
		var out [][]byte
		if junk := in.next(); junk != nil {
			out = append(out, junk)
		}
		return append(out, natpmpAnswer(0, honest))
	})
	f.Add(natpmpAnswer(0, netip.MustParseAddr("203.0.113.9")))
	f.Add(natpmpAnswer(3, netip.MustParseAddr("0.0.0.0")))
	f.Add([]byte{0, 128, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, junk []byte) {
		sent := append([]byte{}, junk...)
		in.set(sent)
		got, err := detect.GatewayExternalIPv4(context.Background(), &net.Dialer{}, gw, 5*time.Second)
		response := len(sent) >= 12 && sent[0] == 0 && sent[1] == 128
		switch {
		case err != nil:
			if !response || binary.BigEndian.Uint16(sent[2:4]) == 0 {
				t.Fatalf("GatewayExternalIPv4: %v; want an address", err)
			}
		case !got.Is4():
			t.Fatalf("address %v is not IPv4", got)
		case got != honest:
			if !response || got != netip.AddrFrom4([4]byte(sent[8:12])) {
				t.Fatalf("address %v is neither the junk's nor the honest %v", got, honest)
			}
		}
	})
}

// natpmpAnswer is a gateway's answer to an external-address request.
func natpmpAnswer(code uint16, a netip.Addr) []byte {
	b := []byte{0, 128, 0, 0, 0, 0, 0, 42}
	b = binary.BigEndian.AppendUint16(b[:2], code)
	b = append(b, 0, 0, 0, 42)
	a4 := a.As4()
	return append(b, a4[:]...)
}

// FuzzWhoamiAnswer: whatever a whoami server answers, Whoami returns an
// error or one plain address (no zone) of the server's family that the
// answer's single TXT string holds.
func FuzzWhoamiAnswer(f *testing.F) {
	in := newFuzzInput()
	reply := func(req []byte) [][]byte {
		junk := in.next()
		if junk == nil || len(req) < 2 {
			return nil
		}
		if len(junk) >= 2 {
			copy(junk[:2], req[:2])
		}
		return [][]byte{junk}
	}
	srv4 := responderOn(f, "127.0.0.1:0", reply)
	srv6 := responderOn(f, "[::1]:0", reply)
	for _, txt := range [][]string{{"203.0.113.9"}, {"2001:db8::9"}, {"2001:db8::9%eth0"}, {"203.0.113.9", "203.0.113.10"}, {"<html>"}} {
		m := new(dns.Msg)
		m.SetQuestion(detect.WhoamiName, dns.TypeTXT)
		m.Question[0].Qclass = dns.ClassCHAOS
		m.Response = true
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: detect.WhoamiName, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: txt}}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, strings.Contains(txt[0], ":"))
	}
	f.Fuzz(func(t *testing.T, answer []byte, v6 bool) {
		srv := srv4
		if v6 {
			srv = srv6
		}
		sent := append([]byte{}, answer...)
		in.set(sent)
		a, err := detect.Whoami(context.Background(), &net.Dialer{}, detect.WhoamiServer{Addr: srv}, nil, 2*time.Second)
		if err != nil {
			return
		}
		if a.Is6() != v6 || a.Is4In6() || a.Zone() != "" || !a.IsValid() {
			t.Fatalf("address %v from a server at %v; want a plain address of its family", a, srv)
		}
		var m dns.Msg
		if err := m.Unpack(sent); err != nil {
			t.Fatalf("an address from an answer that does not unpack: %v", err)
		}
		var txts []string
		for _, rr := range m.Answer {
			if t, ok := rr.(*dns.TXT); ok {
				txts = append(txts, t.Txt...)
			}
		}
		if len(txts) != 1 {
			t.Fatalf("address %v from TXT strings %q", a, txts)
		}
	})
}
