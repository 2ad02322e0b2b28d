// Package relaytest has helpers for tests that drive a DERP relay with
// real tailscale.com/derp/derphttp clients.
package relaytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"testing"
	"time"

	"tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// Client is a connected derphttp client and its key.
type Client struct {
	*derphttp.Client
	Priv key.NodePrivate
}

// Connect dials region the way tailscaled does: only what the map says
// (host name, port, CertName pin or InsecureForTests) decides how. The
// client is closed when the test ends.
func Connect(t testing.TB, region *tailcfg.DERPRegion) *Client {
	t.Helper()
	c, err := TryConnect(t, region)
	if err != nil {
		t.Fatalf("derphttp Connect to region %d: %v", region.RegionID, err)
	}
	return c
}

// TryConnect is Connect returning the error instead of failing the test.
func TryConnect(t testing.TB, region *tailcfg.DERPRegion) (*Client, error) {
	t.Helper()
	return TryConnectKey(t, region, key.NewNode())
}

// TryConnectKey is TryConnect with a given node key. Note that a DERP
// server refuses a client only after the connection is made: see
// Admitted.
func TryConnectKey(t testing.TB, region *tailcfg.DERPRegion, priv key.NodePrivate) (*Client, error) {
	t.Helper()
	c := derphttp.NewRegionClient(priv, t.Logf, netmon.NewStatic(), func() *tailcfg.DERPRegion { return region })
	return connect(t, c, priv)
}

// connect connects c within 10 s and closes it when the test ends.
func connect(t testing.TB, c *derphttp.Client, priv key.NodePrivate) (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &Client{c, priv}, nil
}

// ConnectVia dials the relay at url (e.g.
// "https://derp.example.com:12345/derp") through dial, which chooses
// where the connection really goes (a network namespace, a router's
// public address), trusting roots for its certificate. The client is
// closed when the test ends.
func ConnectVia(t testing.TB, url string, roots *x509.CertPool, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*Client, error) {
	t.Helper()
	priv := key.NewNode()
	c, err := derphttp.NewClient(priv, url, t.Logf, netmon.NewStatic())
	if err != nil {
		return nil, err
	}
	c.TLSConfig = &tls.Config{RootCAs: roots}
	c.SetURLDialer(dial)
	return connect(t, c, priv)
}

// SendUntilReceived sends msg from one client to another until it
// arrives, at most 100 times over 10 s. Retrying is needed because Connect
// returns before the server has registered the client, and packets to a
// not-yet-registered peer are dropped. A receiver whose connection
// dropped is given a few seconds to reconnect.
func SendUntilReceived(from, to *Client, msg []byte) error {
	got := make(chan derp.ReceivedPacket, 1)
	errc := make(chan error, 1)
	go func() {
		var lastErr error
		errs := 0
		for i := 0; i < 1000; i++ {
			m, err := to.Recv()
			if err != nil {
				// The connection dropped (a server policy change, a
				// restart): derphttp reconnects on the next Recv.
				lastErr = err
				if errs++; errs > 50 {
					errc <- err
					return
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if p, ok := m.(derp.ReceivedPacket); ok && bytes.Equal(p.Data, msg) {
				got <- p
				return
			}
		}
		errc <- fmt.Errorf("1000 messages without the packet (last error: %v)", lastErr)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
	for i := 0; i < 100; i++ {
		if err := from.Send(to.Priv.Public(), msg); err != nil {
			return fmt.Errorf("Send: %w", err)
		}
		select {
		case p := <-got:
			if p.Source != from.Priv.Public() {
				return fmt.Errorf("packet source: got %v, want %v", p.Source, from.Priv.Public())
			}
			return nil
		case err := <-errc:
			return fmt.Errorf("Recv: %w", err)
		case <-timeout:
			return fmt.Errorf("packet %q not received within 10s", msg)
		case <-tick.C:
		}
	}
	return fmt.Errorf("packet %q not received after 100 sends", msg)
}

// Exchange checks that a and b can send packets to each other.
func Exchange(t testing.TB, a, b *Client) {
	t.Helper()
	if err := SendUntilReceived(a, b, []byte(fmt.Sprintf("a to b at %d", time.Now().UnixNano()))); err != nil {
		t.Fatalf("a → b: %v", err)
	}
	if err := SendUntilReceived(b, a, []byte(fmt.Sprintf("b to a at %d", time.Now().UnixNano()))); err != nil {
		t.Fatalf("b → a: %v", err)
	}
}

// Verdict is a DERP server's decision on a connecting client, as the
// client sees it.
type Verdict int

const (
	// NoVerdict: nothing happened within the wait; the server neither
	// admitted nor refused the client (it is stuck on its admission
	// check).
	NoVerdict Verdict = iota
	// Admitted: the server sent a frame (its info frame comes first),
	// which it does only after admission.
	Admitted
	// Refused: the server closed the connection before its info frame.
	Refused
)

func (v Verdict) String() string {
	switch v {
	case Admitted:
		return "admitted"
	case Refused:
		return "refused"
	}
	return "no verdict"
}

// AwaitVerdict waits at most timeout for the server's verdict on c and
// returns it, with the connection error for Refused. A DERP server refuses
// a client only after the connection is made (TryConnectKey succeeds
// either way), so tests of admission ask here, and say which of the three
// they expect: a relay that fails closed on a hung checker refuses, it
// never leaves NoVerdict.
func AwaitVerdict(c *Client, timeout time.Duration) (Verdict, error) {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Recv()
		errc <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-errc:
		if err != nil {
			return Refused, err
		}
		return Admitted, nil
	case <-t.C:
		c.Close()
		return NoVerdict, nil
	}
}

// ExpectVerdict fails t unless the server's verdict on c, awaited at most
// timeout, is want. It returns how long the verdict took.
func ExpectVerdict(t testing.TB, c *Client, want Verdict, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	got, err := AwaitVerdict(c, timeout)
	took := time.Since(start)
	if got != want {
		t.Errorf("verdict on %v: got %v (%v) after %v, want %v", c.Priv.Public().ShortString(), got, err, took.Round(time.Millisecond), want)
	}
	return took
}
