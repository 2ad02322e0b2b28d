package headscaletest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/derp/derpserver"
	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tstest/integration"
)

// A Node is a real tailscaled (built from the product module's
// tailscale.com, by the integration package, cached by Go's build cache)
// in userspace-networking mode, with its state and LocalAPI socket in a
// temp directory. It never talks to Tailscale's servers: logs are off,
// and TS_PANIC_IF_HIT_MAIN_CONTROL makes a wrong login server fatal.
type Node struct {
	Name   string // its hostname in the tailnet, e.g. "laptop"
	Dir    string
	Socket string

	cli    string
	env    []string
	log    *syncBuffer
	cmd    *exec.Cmd
	exited chan struct{}
	lc     *local.Client
}

// Bounds of the waits on a node.
const (
	nodeReadyTimeout = 30 * time.Second
	nodeUpTimeout    = 60 * time.Second
)

// captive204 answers the captive-portal check of every node in the
// process, so that netcheck asks nothing outside loopback.
var captive204 = sync.OnceValue(func() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(derpserver.ServeNoContent))
})

// StartNode starts a node's tailscaled; env is added to its environment
// (e.g. "TS_DEBUG_NEVER_DIRECT_UDP=1", or SSL_CERT_FILE to trust a test
// CA). It waits until the LocalAPI answers. The node is stopped when the
// test ends.
func StartNode(t testing.TB, name string, env []string) *Node {
	t.Helper()
	bins := integration.GetBinaries(t)
	dir, err := os.MkdirTemp("", "hd-hsnode-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &Node{
		Name:   name,
		Dir:    dir,
		Socket: filepath.Join(dir, "tailscaled.sock"),
		cli:    bins.Tailscale.Path,
		env: append([]string{
			"TS_NO_LOGS_NO_SUPPORT=1",
			"TS_PANIC_IF_HIT_MAIN_CONTROL=1",
			"TS_DISABLE_UPNP=true",
			"TS_DISABLE_PORTMAPPER=1",
			"TS_ASSUME_NETWORK_UP_FOR_TEST=1",
			"TS_NETCHECK_GENERATE_204_URL=" + captive204().URL + "/generate_204",
		}, env...),
		log: &syncBuffer{},
	}
	n.lc = &local.Client{Socket: n.Socket, UseSocketOnly: true}
	n.start(t, bins.Tailscaled.Path)
	t.Cleanup(func() {
		n.Stop(t)
		if t.Failed() {
			t.Logf("tailscaled %s log (last 8 KiB):\n%s", n.Name, tail(n.log.String(), 8<<10))
		}
	})
	return n
}

func (n *Node) start(t testing.TB, tailscaled string) {
	t.Helper()
	n.cmd = exec.Command(tailscaled,
		"--statedir="+n.Dir,
		"--socket="+n.Socket,
		"--tun=userspace-networking",
		"--port=0",
		"--no-logs-no-support",
	)
	n.cmd.Env = append(os.Environ(), n.env...)
	n.cmd.Stdout = n.log
	n.cmd.Stderr = n.log
	n.cmd.WaitDelay = 5 * time.Second
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting tailscaled %s: %v", n.Name, err)
	}
	n.exited = make(chan struct{})
	exited := n.exited
	cmd := n.cmd
	go func() {
		cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(nodeReadyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := n.lc.StatusWithoutPeers(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("tailscaled %s exited before its LocalAPI answered:\n%s", n.Name, n.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tailscaled %s: LocalAPI did not answer within %v: %v", n.Name, nodeReadyTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops tailscaled (SIGTERM, then SIGKILL after a bound). Stopping a
// stopped node does nothing.
func (n *Node) Stop(t testing.TB) {
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
	}
}

// LocalClient talks to the node's LocalAPI.
func (n *Node) LocalClient() *local.Client { return n.lc }

// Tailscale runs the tailscale CLI against the node and returns its
// combined output.
func (n *Node) Tailscale(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), nodeUpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.cli, append([]string{"--socket=" + n.Socket}, args...)...)
	cmd.Env = append(os.Environ(), n.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Up logs the node in to the control server at loginServer with a
// pre-auth key, as a user would with `tailscale up`, and waits for
// Running.
func (n *Node) Up(t testing.TB, loginServer, authKey string) {
	t.Helper()
	out, err := n.Tailscale("up", "--login-server="+loginServer, "--authkey="+authKey,
		"--hostname="+n.Name, "--accept-dns=false", "--timeout="+nodeUpTimeout.String())
	if err != nil {
		t.Fatalf("tailscale up (%s, %s): %v\n%s", n.Name, loginServer, err, out)
	}
	n.AwaitState(t, ipn.Running.String())
}

// AwaitState waits until the node's backend state is want.
func (n *Node) AwaitState(t testing.TB, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(nodeUpTimeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if st, err := n.Status(); err == nil {
			if got = st.BackendState; got == want {
				return
			}
		}
	}
	t.Fatalf("tailscaled %s: state %q after %v, want %q", n.Name, got, nodeUpTimeout, want)
}

// Status is the node's status with its peers.
func (n *Node) Status() (*ipnstate.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.lc.Status(ctx)
}

// NodeKey is the node's current node key, "nodekey:…".
func (n *Node) NodeKey(t testing.TB) string {
	t.Helper()
	st, err := n.Status()
	if err != nil || st.Self == nil {
		t.Fatalf("status of %s: %v", n.Name, err)
	}
	return st.Self.PublicKey.String()
}

// IP4 is the node's tailnet IPv4 address.
func (n *Node) IP4(t testing.TB) netip.Addr {
	t.Helper()
	st, err := n.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range st.TailscaleIPs {
		if ip.Is4() {
			return ip
		}
	}
	t.Fatalf("%s has no tailnet IPv4 address (state %s)", n.Name, st.BackendState)
	return netip.Addr{}
}

// PingVia runs `tailscale ping` to other until a pong names the DERP
// region via (e.g. "DERP(home)"), retrying up to timeout, and returns the
// output that did.
func (n *Node) PingVia(t testing.TB, other *Node, via string, timeout time.Duration) (string, error) {
	t.Helper()
	ip := other.IP4(t)
	var last string
	deadline := time.Now().Add(timeout)
	for i := 0; i < 60 && time.Now().Before(deadline); i++ {
		out, err := n.Tailscale("ping", "-c", "3", "--until-direct=false", "--timeout=3s", ip.String())
		if strings.Contains(out, "via "+via) {
			return strings.TrimSpace(out), nil
		}
		last = fmt.Sprintf("%v: %s", err, strings.TrimSpace(out))
		time.Sleep(time.Second)
	}
	return "", fmt.Errorf("%s → %s: no pong via %s within %v; last: %s", n.Name, other.Name, via, timeout, last)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
