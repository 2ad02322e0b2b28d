package relay

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/derp"
	"tailscale.com/net/stun"
)

// These benchmarks run client and server in one process; the
// comparison with upstream derper, each server in its own process, is
// relay/cmd/derpload (see BENCHMARKS.md).

// BenchmarkRelayThroughput sends 1200-byte packets from one client to
// another through the relay, keeping 32 in flight.
func BenchmarkRelayThroughput(b *testing.B) {
	tr := startRelayWith(b, b.TempDir(), relayOpts{logf: func(string, ...any) {}})
	a := relaytest.Connect(b, tr.region)
	c := relaytest.Connect(b, tr.region)
	relaytest.Exchange(b, a, c)

	const window = 32
	credits := make(chan struct{}, window)
	for range window {
		credits <- struct{}{}
	}
	done := make(chan int)
	go func() {
		n := 0
		for n < b.N {
			m, err := c.Recv()
			if err != nil {
				break
			}
			if _, ok := m.(derp.ReceivedPacket); ok {
				n++
				credits <- struct{}{}
			}
		}
		done <- n
	}()
	pkt := bytes.Repeat([]byte{'x'}, 1200)
	dst := c.Priv.Public() // an X25519 multiplication: not per packet
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		select {
		case <-credits:
		case <-time.After(time.Second):
			b.Fatalf("packet %d: the window did not open within 1s", i)
		}
		if err := a.Send(dst, pkt); err != nil {
			b.Fatal(err)
		}
	}
	if n := <-done; n != b.N {
		b.Fatalf("received %d of %d packets", n, b.N)
	}
}

// BenchmarkGetCertificate is the relay's part of every TLS handshake:
// asking the current source and appending the meta certificate.
func BenchmarkGetCertificate(b *testing.B) {
	tr := startRelayWith(b, b.TempDir(), relayOpts{logf: func(string, ...any) {}})
	hi := &tls.ClientHelloInfo{ServerName: "localhost"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := tr.srv.getCertificate(hi); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientConnect is a client's TLS handshake and DERP upgrade,
// what the accept limit spends a token on.
func BenchmarkClientConnect(b *testing.B) {
	tr := startRelayWith(b, b.TempDir(), relayOpts{logf: func(string, ...any) {}})
	for i := 0; i < b.N; i++ {
		c, err := relaytest.TryConnect(b, tr.region)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func BenchmarkAcceptLimiterAllow(b *testing.B) {
	a := newAcceptLimiter(time.Now)
	a.set(AcceptLimit{PerSec: 1e12, Burst: 1 << 30})
	for i := 0; i < b.N; i++ {
		a.allow()
	}
}

// BenchmarkSTUN is one binding request and its answer.
func BenchmarkSTUN(b *testing.B) {
	tr := startRelayWith(b, b.TempDir(), relayOpts{logf: func(string, ...any) {}})
	conn, err := net.DialUDP("udp", nil, tr.srv.STUNAddrs()[0].(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 1500)
	for i := 0; i < b.N; i++ {
		tx := stun.NewTxID()
		if _, err := conn.Write(stun.Request(tx)); err != nil {
			b.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		if got, _, err := stun.ParseResponse(buf[:n]); err != nil || got != tx {
			b.Fatalf("answer: %v %v", got, err)
		}
	}
}
