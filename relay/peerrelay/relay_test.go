package peerrelay

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testenv"
)

// relayPort is the box's peer relay port. A fixed port is safe here: it
// is bound inside the box's own namespace.
const relayPort = 40000

// pingVia runs `tailscale ping` from one node to another until a pong
// comes back over the path want names (e.g. "peer-relay(" or
// "DERP(home)"), for at most timeout, and returns that pong's line.
func pingVia(t testing.TB, from, to *node, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for i := 0; i < 60 && time.Now().Before(deadline); i++ {
		out, err := from.tailscale("ping", "-c", "3", "--until-direct=false", "--timeout=2s", to.ip.String())
		last = fmt.Sprintf("%v: %s", err, out)
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "pong from") && strings.Contains(line, "via "+want) {
				return line
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s → %s: no pong via %s within %v; last: %s", from.name, to.name, want, timeout, last)
	return ""
}

// dropped reads how many packets the hub's rule for the direct path
// dropped.
func dropped(t testing.TB, b *bed) int {
	t.Helper()
	out := b.hub.Run("nft", "list", "chain", "inet", "pr14", "forward")
	n := 0
	for _, m := range regexp.MustCompile(`counter packets (\d+)`).FindAllStringSubmatch(out, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

// TestPeerRelay is the story of the box as a Tailscale peer relay, with
// real tailscaled nodes in network namespaces: two nodes that cannot
// reach each other directly (the hub drops the UDP between them), the
// box relaying for them once its preference is set, data flowing through
// it, and DERP(home) taking over when it is switched off.
func TestPeerRelay(t *testing.T) {
	testenv.NeedLong(t)
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "ip")
	testenv.NeedCommand(t, "nft")
	testenv.NeedCommand(t, "go") // the integration package builds tailscaled

	b := newBed(t)
	b.startControl(t, b.startRelay(t))
	box := b.startNode(t, b.boxNS, "box")
	n1 := b.startNode(t, b.n1NS, "n1")
	n2 := b.startNode(t, b.n2NS, "n2")
	ctx := context.Background()

	t.Run("the box's tailscaled relays on the port set", func(t *testing.T) {
		changed, err := Apply(ctx, box.lc, relayPort)
		if err != nil || !changed {
			t.Fatalf("Apply(%d): changed %v, %v; want a change", relayPort, changed, err)
		}
		if changed, err := Apply(ctx, box.lc, relayPort); err != nil || changed {
			t.Errorf("Apply(%d) again: changed %v, %v; want nothing to do", relayPort, changed, err)
		}
		if got := box.run(t, "get", "relay-server-port"); strings.TrimSpace(got) != strconv.Itoa(relayPort) {
			t.Errorf("tailscale get relay-server-port: got %q, want %d", got, relayPort)
		}
		awaitStatus(t, box, func(st Status) bool { return st.Port == relayPort && st.Running })
	})

	t.Run("the nodes ping through the peer relay", func(t *testing.T) {
		line := pingVia(t, n1, n2, "peer-relay("+boxAddr+":"+strconv.Itoa(relayPort), 60*time.Second)
		t.Logf("n1 → n2: %s", line)
		t.Logf("n2 → n1: %s", pingVia(t, n2, n1, "peer-relay("+boxAddr+":"+strconv.Itoa(relayPort), 30*time.Second))
		if d := dropped(t, b); d == 0 {
			t.Errorf("the hub dropped no UDP between the nodes: they never tried the direct path, so the test shows nothing")
		} else {
			t.Logf("direct UDP packets dropped by the hub: %d", d)
		}
	})

	t.Run("traffic flows through it", func(t *testing.T) {
		const size = 1 << 20
		payload := make([]byte, size)
		rand.Read(payload)
		port := payloadServer(t, n2, payload)
		before := relayedBytes(t, box)
		if got := fetch(t, n1, n2, port); !bytes.Equal(got, payload) {
			t.Fatalf("n1 read %d of %d bytes from n2, or not the ones sent", len(got), size)
		}
		// The bytes went through the box: its relay counted them.
		st := awaitStatus(t, box, func(st Status) bool { return relayedBytes(t, box)-before >= size })
		for _, s := range st.Sessions {
			t.Logf("session vni %d: %s %d bytes, %s %d bytes", s.VNI, s.Clients[0].Endpoint, s.Clients[0].Bytes, s.Clients[1].Endpoint, s.Clients[1].Bytes)
		}
	})

	t.Run("it offers the address the router forwards", func(t *testing.T) {
		// In the bed no router forwards anything: a documentation
		// address stands for the line's public IPv4.
		forwarded := netip.MustParseAddrPort("203.0.113.7:" + strconv.Itoa(relayPort))
		if changed, err := Advertise(ctx, box.lc, []netip.AddrPort{forwarded}); err != nil || !changed {
			t.Fatalf("Advertise(%v): changed %v, %v; want a change", forwarded, changed, err)
		}
		if got := strings.TrimSpace(box.run(t, "get", "relay-server-static-endpoints")); got != forwarded.String() {
			t.Errorf("tailscale get relay-server-static-endpoints: got %q, want %q", got, forwarded)
		}
		st := awaitStatus(t, box, func(st Status) bool { return st.Running })
		if len(st.Advertised) != 1 || st.Advertised[0] != forwarded.String() {
			t.Errorf("Read: advertised %q, want [%v]", st.Advertised, forwarded)
		}
		// The relay keeps working with an address that leads nowhere
		// among its candidates.
		pingVia(t, n1, n2, "peer-relay("+boxAddr+":"+strconv.Itoa(relayPort), 30*time.Second)
		if changed, err := Advertise(ctx, box.lc, nil); err != nil || !changed {
			t.Fatalf("Advertise(nil): changed %v, %v; want a change", changed, err)
		}
		if got := strings.TrimSpace(box.run(t, "get", "relay-server-static-endpoints")); got != "" {
			t.Errorf("tailscale get relay-server-static-endpoints after clearing: got %q", got)
		}
	})

	t.Run("switched off, the nodes fall back to DERP(home)", func(t *testing.T) {
		if changed, err := Apply(ctx, box.lc, 0); err != nil || !changed {
			t.Fatalf("Apply(0): changed %v, %v; want a change", changed, err)
		}
		st := awaitStatus(t, box, func(st Status) bool { return st.Port == 0 && !st.Running })
		if len(st.Sessions) != 0 {
			t.Errorf("sessions after switching off: %+v", st.Sessions)
		}
		t.Logf("n1 → n2: %s", pingVia(t, n1, n2, "DERP(home)", 60*time.Second))
	})
}

// payloadServer serves payload to every connection on n's loopback,
// where its userspace tailscaled forwards the connections to its tailnet
// address, and returns the port.
func payloadServer(t testing.TB, n *node, payload []byte) int {
	ln := n.ns.MustListen("tcp4", "127.0.0.1:0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // the test ended
			}
			go func() {
				defer c.Close()
				c.Write(payload)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// fetch reads what to's payloadServer on port sends, dialling through
// from's tailscaled (as `tailscale nc` does), in at most 60 s.
func fetch(t testing.TB, from, to *node, port int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := from.lc.DialTCP(ctx, to.ip.String(), uint16(port))
	if err != nil {
		t.Fatalf("%s dialling %s through its tailscaled: %v", from.name, to.name, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%s reading from %s: %v after %d bytes", from.name, to.name, err, len(got))
	}
	return got
}

// relayedBytes is what the box's relay has relayed in its current
// sessions.
func relayedBytes(t testing.TB, box *node) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := Read(ctx, box.lc)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, s := range st.Sessions {
		n += s.Bytes()
	}
	return n
}

// awaitStatus polls Read on n until ok accepts the status (bounded).
func awaitStatus(t testing.TB, n *node, ok func(Status) bool) Status {
	t.Helper()
	var st Status
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err = Read(ctx, n.lc)
		cancel()
		if err == nil && ok(st) {
			return st
		}
	}
	t.Fatalf("%s: peer relay status %+v, %v", n.name, st, err)
	return st
}
