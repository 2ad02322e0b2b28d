package main

import (
	"context"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

// The floods of TestFloods. Each runs workers until ctx ends, counts
// every finished operation in ops and every operation that did not go as
// a healthy relay makes it go in bad (with the last reason in badWhy),
// and returns once all its workers (and their connections) are done.
// Every loop is bounded by ctx, every wait by a deadline.

type floodStats struct {
	ops, bad atomic.Int64
	// slow counts connections the load generator gave up dialing within
	// derphttp's fixed 1.5 s dial timeout: on a loaded 2-core machine
	// its own goroutines can wait that long to run. They are bounded
	// apart from the operations that went wrong.
	slow   atomic.Int64
	mu     sync.Mutex
	badWhy string
}

func (s *floodStats) fail(why string) {
	s.bad.Add(1)
	s.mu.Lock()
	s.badWhy = why
	s.mu.Unlock()
}

func (s *floodStats) why() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badWhy
}

// workers runs n copies of f until ctx ends.
func workers(ctx context.Context, n int, f func(ctx context.Context, i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				f(ctx, i)
			}
		})
	}
	wg.Wait()
}

// churnDERP connects real derphttp clients with fresh keys, waits for
// the server's info frame (the client is registered) and disconnects.
//
// The clients dial the node's IPv4 loopback only: the map names the node
// "localhost", and where /etc/hosts has no ::1 line (CI's machines) a
// dual-stack dial's tcp6 half fails at once and derphttp reports that
// error, hiding why the tcp4 half failed.
func churnDERP(region *tailcfg.DERPRegion) func(context.Context, *floodStats) {
	region = region.Clone()
	for _, n := range region.Nodes {
		n.IPv4, n.IPv6 = "127.0.0.1", "none"
	}
	return func(ctx context.Context, st *floodStats) {
		workers(ctx, 8, func(ctx context.Context, _ int) {
			c := derphttp.NewRegionClient(key.NewNode(), logger.Discard, netmon.NewStatic(), func() *tailcfg.DERPRegion { return region })
			defer c.Close()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := c.Connect(cctx); err != nil {
				switch {
				case ctx.Err() != nil:
				case strings.HasSuffix(err.Error(), "i/o timeout"):
					// derphttp flattens the dial's error with %v,
					// so only its text says it was a timeout.
					st.slow.Add(1)
				default:
					st.fail("connect: " + err.Error())
				}
				return
			}
			got := make(chan error, 1)
			go func() {
				m, err := c.Recv()
				if _, ok := m.(derp.ServerInfoMessage); err == nil && !ok {
					err = errString("first message is not the server info")
				}
				got <- err
			}()
			select {
			case err := <-got:
				if err != nil {
					st.fail("recv: " + err.Error())
					return
				}
				st.ops.Add(1)
			case <-time.After(10 * time.Second):
				st.fail("no server info within 10s")
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// halfOpenTLS opens connections that send the start of a ClientHello and
// then nothing, 100 a second, and holds each until the server closes it.
// The server must close every one within its handshake timeout (10 s)
// plus slack, also after the phase has ended.
func halfOpenTLS(addr string) func(context.Context, *floodStats) {
	return func(ctx context.Context, st *floodStats) {
		var wg sync.WaitGroup
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-tick.C:
				wg.Go(func() {
					c, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						st.fail("dial: " + err.Error())
						return
					}
					defer c.Close()
					// A TLS record header and the first bytes of a
					// ClientHello announcing 512 bytes that never come.
					c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03})
					c.SetReadDeadline(time.Now().Add(20 * time.Second))
					if _, err := io.Copy(io.Discard, c); err != nil {
						st.fail("the server left a half-open TLS connection open for 20s: " + err.Error())
						return
					}
					st.ops.Add(1)
				})
			}
		}
		wg.Wait()
	}
}

// garbageDERP sends junk to the DERP port three ways: raw bytes instead
// of TLS, junk inside TLS instead of HTTP, and junk DERP frames after a
// proper upgrade request. The server must close each connection.
func garbageDERP(addr string) func(context.Context, *floodStats) {
	return func(ctx context.Context, st *floodStats) {
		workers(ctx, 6, func(ctx context.Context, i int) {
			junk := make([]byte, 64+rand.IntN(4096))
			for j := range junk {
				junk[j] = byte(rand.Uint32())
			}
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				st.fail("dial: " + err.Error())
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(15 * time.Second))
			var conn net.Conn = c
			if i%3 != 0 {
				tc := tls.Client(c, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
				if err := tc.Handshake(); err != nil {
					st.fail("TLS handshake: " + err.Error())
					return
				}
				conn = tc
			}
			if i%3 == 2 {
				io.WriteString(conn, "GET /derp HTTP/1.1\r\nHost: localhost\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n")
			}
			conn.Write(junk)
			if _, err := io.Copy(io.Discard, conn); err != nil && !isReset(err) {
				st.fail("after junk: " + err.Error())
				return
			}
			st.ops.Add(1)
		})
	}
}

// isReset: a server that closes with unread junk in its buffer resets
// the connection, which is as good as a close here.
func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// stunJunk floods the STUN port with junk from many loopback addresses
// (127.x.y.z, as spoofed sources look), at most about 20 000 packets a
// second, while a prober asks real binding requests 10 times a second
// and counts the answers in probeOK of probeSent.
func stunJunk(server netip.AddrPort, probeSent, probeOK *atomic.Int64) func(context.Context, *floodStats) {
	return func(ctx context.Context, st *floodStats) {
		var wg sync.WaitGroup
		wg.Go(func() { probeSTUN(ctx, server, probeSent, probeOK) })
		workers(ctx, 4, func(ctx context.Context, _ int) {
			src := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
			pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
			if err != nil {
				st.fail("listen: " + err.Error())
				return
			}
			defer pc.Close()
			dst := net.UDPAddrFromAddrPort(server)
			var tx stun.TxID
			for range 50 { // then another source address
				for range 50 {
					pc.WriteToUDP(junkSTUN(tx), dst)
					st.ops.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
		wg.Wait()
	}
}

// junkSTUN is one packet of junk: random bytes, or a STUN header with
// the magic cookie and broken attributes, or a response where a request
// belongs.
func junkSTUN(tx stun.TxID) []byte {
	switch rand.IntN(4) {
	case 0:
		b := make([]byte, 1+rand.IntN(600))
		for i := range b {
			b[i] = byte(rand.Uint32())
		}
		return b
	case 1:
		b := stun.Request(tx)
		b[3] = byte(rand.Uint32()) // a length that does not match
		return append(b, make([]byte, rand.IntN(40))...)
	case 2:
		return stun.Response(tx, netip.MustParseAddrPort("203.0.113.9:41641"))
	default:
		b := stun.Request(tx)
		return b[:rand.IntN(len(b))]
	}
}

func probeSTUN(ctx context.Context, server netip.AddrPort, sent, ok *atomic.Int64) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return
	}
	defer pc.Close()
	buf := make([]byte, 1500)
	for ctx.Err() == nil {
		tx := stun.NewTxID()
		pc.WriteToUDP(stun.Request(tx), net.UDPAddrFromAddrPort(server))
		sent.Add(1)
		deadline := time.Now().Add(100 * time.Millisecond)
		for time.Now().Before(deadline) {
			pc.SetReadDeadline(deadline)
			n, _, err := pc.ReadFromUDP(buf)
			if err != nil {
				break
			}
			if got, _, err := stun.ParseResponse(buf[:n]); err == nil && got == tx {
				ok.Add(1)
				time.Sleep(time.Until(deadline))
				break
			}
		}
	}
}

// webUIFlood sends requests to the web UI from a loopback source address
// of its own (so the login limiter's verdicts on it do not touch the
// watcher's scrapes), over kept-alive and new connections alike. With a
// password it reads the pages a person and a scraper read; without, it
// tries the pages, wrong passwords and forged forms. An answer other
// than the one a healthy web UI gives counts as bad.
func webUIFlood(base, password string, src netip.Addr) func(context.Context, *floodStats) {
	return func(ctx context.Context, st *floodStats) {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 5 * time.Second}
		keep := &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 8}
		fresh := &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}
		defer keep.CloseIdleConnections()
		noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		clients := []*http.Client{
			{Transport: keep, Timeout: 10 * time.Second, CheckRedirect: noRedirect},
			{Transport: fresh, Timeout: 10 * time.Second, CheckRedirect: noRedirect},
		}
		workers(ctx, 8, func(ctx context.Context, i int) {
			var req *http.Request
			var want []int
			n := rand.IntN(4)
			switch {
			case password != "" && n == 0:
				req, _ = http.NewRequestWithContext(ctx, "GET", base, nil)
				want = []int{http.StatusOK}
			case password != "" && n == 1:
				req, _ = http.NewRequestWithContext(ctx, "GET", base+"setup", nil)
				req.Header.Set("Accept", "application/json")
				want = []int{http.StatusOK}
			case password != "" && n == 2:
				req, _ = http.NewRequestWithContext(ctx, "GET", base+"derpmap", nil)
				want = []int{http.StatusOK}
			case password != "":
				req, _ = http.NewRequestWithContext(ctx, "GET", base+"metrics", nil)
				want = []int{http.StatusOK}
			case n == 0:
				req, _ = http.NewRequestWithContext(ctx, "GET", base, nil)
				want = []int{http.StatusSeeOther}
			case n == 1:
				req, _ = http.NewRequestWithContext(ctx, "GET", base+"metrics", nil)
				req.SetBasicAuth("gokrazy", "wrong password")
				want = []int{http.StatusUnauthorized, http.StatusTooManyRequests}
			case n == 2:
				req, _ = http.NewRequestWithContext(ctx, "POST", base+"login", strings.NewReader(url.Values{"password": {"guess"}, "csrf": {"forged"}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				want = []int{http.StatusForbidden}
			default:
				req, _ = http.NewRequestWithContext(ctx, "POST", base+"setup/ports", strings.NewReader("relay.derp_port=1"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				want = []int{http.StatusUnauthorized}
			}
			if password != "" {
				req.SetBasicAuth("gokrazy", password)
			}
			resp, err := clients[i%2].Do(req)
			if err != nil {
				if ctx.Err() == nil {
					st.fail(req.Method + " " + req.URL.Path + ": " + err.Error())
				}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			for _, w := range want {
				if resp.StatusCode == w {
					st.ops.Add(1)
					return
				}
			}
			st.fail(req.Method + " " + req.URL.Path + ": " + resp.Status)
		})
	}
}
