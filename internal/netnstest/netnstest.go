// Package netnstest builds network test beds from Linux network
// namespaces: namespaces joined by veth pairs, with addresses, routes,
// sysctls and nftables rules, and Go code or programs running inside them.
// Everything is removed when the test ends. It needs root; call
// testenv.NeedRoot first.
//
// Go code runs inside a namespace in two ways. Sockets keep the namespace
// they were created in, so NS.Do runs a function on a locked OS thread
// switched into the namespace (good for opening listeners and dialling), and
// NS.Dialer returns a dialer whose sockets all open inside it, so a library
// that takes a dialer runs unchanged "in" the namespace while its goroutines
// stay in the test. Only IP literals may be dialled that way: the Go
// resolver would open its sockets on other threads. Whole programs (BIND,
// a re-executed test binary) run under `ip netns exec` with NS.Command.
//
// Namespace names are the caller's prefix (for example "hd-ddns-home", with
// the area prefix that keeps parallel engineers apart) plus a random suffix.
// Interfaces are created directly inside their namespaces, so nothing ever
// appears in the host's namespace.
package netnstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// NS is a network namespace created for a test.
type NS struct {
	Name string // e.g. "hd-ddns-home-3fa2c1"
	t    testing.TB
	h    netns.NsHandle
}

// New creates a namespace called prefix-<random> with its loopback up and
// IPv6 duplicate address detection off, and deletes it when the test ends.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	name := prefix + "-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	n := &NS{Name: name, t: t}
	t.Cleanup(func() {
		if n.h.IsOpen() {
			n.h.Close()
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("opening namespace %s: %v", name, err)
	}
	n.h = h
	n.IP("link", "set", "lo", "up")
	// No IPv6 duplicate address detection: link-local addresses would
	// otherwise stay tentative for a second or two after a link comes
	// up, and neighbour discovery through a fresh bed would race it.
	n.Sysctl("net.ipv6.conf.all.accept_dad", "0")
	n.Sysctl("net.ipv6.conf.default.accept_dad", "0")
	return n
}

// IP runs `ip -n NAME args...` and fails the test on error.
func (n *NS) IP(args ...string) string {
	n.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("ip -n %s %s: %v: %s", n.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Run runs a program inside the namespace and returns its combined output,
// failing the test on error.
func (n *NS) Run(name string, args ...string) string {
	n.t.Helper()
	out, err := n.Command(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("in %s: %s %s: %v: %s", n.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Command returns a command that runs name inside the namespace through
// `ip netns exec` (which also gives it the namespace's /sys).
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Sysctl sets a sysctl inside the namespace, e.g.
// Sysctl("net.ipv4.ip_forward", "1"). It writes /proc/sys through the
// shell rather than needing procps's sysctl.
func (n *NS) Sysctl(key, value string) {
	n.t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	n.Run("sh", "-c", `echo "$1" > "$2"`, "sh", value, path)
}

// Nft loads an nftables ruleset (nft -f syntax) into the namespace.
func (n *NS) Nft(ruleset string) {
	n.t.Helper()
	cmd := n.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		n.t.Fatalf("nft in %s: %v: %s\nruleset:\n%s", n.Name, err, out.String(), ruleset)
	}
}

// Link connects a and b with a veth pair named aIf (in a) and bIf (in b),
// both up.
func Link(t testing.TB, a *NS, aIf string, b *NS, bIf string) {
	t.Helper()
	a.IP("link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	a.IP("link", "set", aIf, "up")
	b.IP("link", "set", bIf, "up")
}

// AddAddr adds an address (CIDR) to an interface. IPv6 addresses skip
// duplicate address detection, so they work at once.
func (n *NS) AddAddr(ifname, cidr string, extra ...string) {
	n.t.Helper()
	args := []string{"addr", "add", cidr, "dev", ifname}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	n.IP(append(args, extra...)...)
}

// Do runs fn on an OS thread switched into the namespace. Sockets fn
// creates stay in the namespace after Do returns. fn must not rely on
// goroutines it starts being in the namespace.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("reading the current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(n.h); err != nil {
			// The thread's state is unknown: stay locked so the
			// runtime discards the thread when this goroutine ends.
			errc <- fmt.Errorf("entering %s: %w", n.Name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leaving %s: %w", n.Name, err)
			return // stays locked: the thread is discarded
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Dialer opens sockets inside a namespace. It implements the dialer
// interfaces of the ddns packages (DialContext, ListenPacket).
type Dialer struct{ ns *NS }

// Dialer returns a dialer for the namespace.
func (n *NS) Dialer() Dialer { return Dialer{n} }

// DialContext dials address (an IP literal and port) from the namespace.
func (d Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := d.ns.Do(func() error {
		var err error
		var nd net.Dialer
		c, err = nd.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// ListenPacket opens a UDP socket inside the namespace.
func (d Dialer) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := d.ns.Do(func() error {
		var err error
		var lc net.ListenConfig
		pc, err = lc.ListenPacket(ctx, network, address)
		return err
	})
	return pc, err
}

// Listen opens a listening TCP socket inside the namespace.
func (d Dialer) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	var l net.Listener
	err := d.ns.Do(func() error {
		var err error
		var lc net.ListenConfig
		l, err = lc.Listen(ctx, network, address)
		return err
	})
	return l, err
}

// MustListen is Listen failing the test on error.
func (n *NS) MustListen(network, address string) net.Listener {
	n.t.Helper()
	l, err := n.Dialer().Listen(context.Background(), network, address)
	if err != nil {
		n.t.Fatalf("listening on %s %s in %s: %v", network, address, n.Name, err)
	}
	n.t.Cleanup(func() { l.Close() })
	return l
}

// MustListenPacket is ListenPacket failing the test on error.
func (n *NS) MustListenPacket(network, address string) net.PacketConn {
	n.t.Helper()
	pc, err := n.Dialer().ListenPacket(context.Background(), network, address)
	if err != nil {
		n.t.Fatalf("listening on %s %s in %s: %v", network, address, n.Name, err)
	}
	n.t.Cleanup(func() { pc.Close() })
	return pc
}
