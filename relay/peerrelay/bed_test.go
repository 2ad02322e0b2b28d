package peerrelay

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/internal/netnstest"
	"github.com/homederp/homederp/relay"
	"tailscale.com/client/local"
	"tailscale.com/ipn"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"
)

// bed is a tailnet in network namespaces: a hub that routes between
// three leaf namespaces and runs the control server, the box (homederp's
// relay, DERP region 900 "home", and the box's tailscaled), and two
// nodes whose UDP to each other the hub drops. Everything else is routed,
// so the nodes reach the box, DERP, STUN and control.
//
//	n1 10.14.2.2 ─┐                  ┌─ box 10.14.1.2 (DERP, STUN, tailscaled)
//	              hub (control 10.14.0.1; drops udp n1 ↔ n2)
//	n2 10.14.3.2 ─┘
type bed struct {
	hub, boxNS, n1NS, n2NS *netnstest.NS
	control                *testcontrol.Server
	controlURL             string
	bins                   *integration.Binaries
}

// boxAddr is the box's address in the bed.
const boxAddr = "10.14.1.2"

func newBed(t testing.TB) *bed {
	t.Helper()
	b := &bed{
		hub:   netnstest.New(t, "hd-pr-hub"),
		boxNS: netnstest.New(t, "hd-pr-box"),
		n1NS:  netnstest.New(t, "hd-pr-n1"),
		n2NS:  netnstest.New(t, "hd-pr-n2"),
	}
	b.hub.Sysctl("net.ipv4.ip_forward", "1")
	b.hub.AddAddr("lo", "10.14.0.1/32")
	for i, leaf := range []*netnstest.NS{b.boxNS, b.n1NS, b.n2NS} {
		hubIf := fmt.Sprintf("leaf%d", i+1)
		netnstest.Link(t, b.hub, hubIf, leaf, "eth0")
		b.hub.AddAddr(hubIf, fmt.Sprintf("10.14.%d.1/24", i+1))
		leaf.AddAddr("eth0", fmt.Sprintf("10.14.%d.2/24", i+1))
		leaf.IP("route", "add", "default", "via", fmt.Sprintf("10.14.%d.1", i+1))
	}
	// The direct path between the nodes: any UDP, whatever port their
	// magicsock picks. Counted, so the test can show it was tried.
	b.hub.Nft(`table inet pr14 {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip saddr 10.14.2.0/24 ip daddr 10.14.3.0/24 meta l4proto udp counter drop
		ip saddr 10.14.3.0/24 ip daddr 10.14.2.0/24 meta l4proto udp counter drop
	}
}`)
	b.bins = integration.GetBinaries(t)
	return b
}

// startRelay runs homederp's relay in the box namespace and returns the
// DERP map the control server hands out: only region 900 "home", pinned.
func (b *bed) startRelay(t testing.TB) *tailcfg.DERPMap {
	t.Helper()
	dir := t.TempDir()
	certs, err := relay.SelfSigned(filepath.Join(dir, "certs"), boxAddr, time.Now(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := relay.New(relay.Config{
		Hostname:  boxAddr,
		DERPAddrs: []string{boxAddr + ":0"},
		STUNAddrs: []string{boxAddr + ":0"},
		KeyPath:   filepath.Join(dir, "derper.key"),
		Certs:     certs,
	}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.boxNS.Do(srv.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := config.Default()
	c.Hostname = boxAddr
	c.Relay.DERPPort = srv.DERPAddr().(*net.TCPAddr).Port
	c.Relay.STUNPort = srv.STUNAddrs()[0].(*net.UDPAddr).Port
	return derpmap.Map(c, derpmap.Options{PinnedCert: srv.PinnedCert()})
}

// startControl runs testcontrol in the hub. PeerRelayGrants makes it
// grant tailscale.com/cap/relay and cap/relay-target between all nodes,
// what the policy's grant (Grant) makes Tailscale's control server send.
func (b *bed) startControl(t testing.TB, dm *tailcfg.DERPMap) {
	t.Helper()
	b.control = &testcontrol.Server{
		DERPMap:          dm,
		PeerRelayGrants:  true,
		AllNodesSameUser: true,
		Logf:             func(format string, args ...any) { t.Logf("testcontrol: "+format, args...) },
	}
	hs := &httptest.Server{
		Listener: b.hub.MustListen("tcp4", "10.14.0.1:0"),
		Config:   &http.Server{Handler: b.control},
	}
	b.control.HTTPTestServer = hs
	hs.Start()
	t.Cleanup(hs.Close)
	b.controlURL = hs.URL
}

// node is a tailscaled running in a namespace, userspace networking as on
// the box, logged in to the bed's control server.
type node struct {
	name string
	ns   *netnstest.NS
	sock string
	cli  string
	lc   *local.Client
	ip   netip.Addr // its tailnet IPv4
}

// Bounds of the waits on a node.
const (
	nodeUpTimeout   = 60 * time.Second
	nodeStopTimeout = 10 * time.Second
)

func (b *bed) startNode(t testing.TB, ns *netnstest.NS, name string) *node {
	t.Helper()
	dir, err := os.MkdirTemp("", "hd-pr-"+name) // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &node{name: name, ns: ns, sock: filepath.Join(dir, "s"), cli: b.bins.Tailscale.Path}
	n.lc = &local.Client{Socket: n.sock, UseSocketOnly: true}

	logPath := filepath.Join(dir, "tailscaled.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(context.Background(), b.bins.Tailscaled.Path,
		"--statedir="+dir, "--socket="+n.sock, "--tun=userspace-networking", "--no-logs-no-support")
	// tailscaled exits when the test process does (the pipe's other end
	// closes), as in tailscale.com/tstest/integration.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{pr}
	cmd.Env = append(os.Environ(),
		"TS_PARENT_DEATH_FD=3",
		"TS_ASSUME_NETWORK_UP_FOR_TEST=1",
		"TS_DISABLE_PORTMAPPER=1",
		"TS_DISABLE_UPNP=true",
		"TS_PANIC_IF_HIT_MAIN_CONTROL=1",
		"TS_NETCHECK_GENERATE_204_URL="+b.controlURL+"/generate_204",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting tailscaled for %s: %v", name, err)
	}
	pr.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(nodeStopTimeout):
			cmd.Process.Kill()
			<-exited
		}
		pw.Close()
		logFile.Close()
		if t.Failed() {
			logTail(t, name, logPath, 80)
		}
	})

	n.run(t, "up", "--login-server="+b.controlURL, "--hostname="+name, "--reset")
	deadline := time.Now().Add(nodeUpTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := n.lc.Status(ctx)
		cancel()
		if err == nil && st.BackendState == ipn.Running.String() && len(st.TailscaleIPs) > 0 {
			n.ip = st.TailscaleIPs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not running within %v: %v %v", name, nodeUpTimeout, st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return n
}

// run runs the tailscale CLI against the node and fails the test on error.
func (n *node) run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.tailscale(args...)
	if err != nil {
		t.Fatalf("%s: tailscale %s: %v\n%s", n.name, strings.Join(args, " "), err, out)
	}
	return out
}

// tailscale runs the tailscale CLI against the node, for at most 30 s.
func (n *node) tailscale(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.cli, append([]string{"--socket=" + n.sock}, args...)...).CombinedOutput()
	return string(out), err
}

// logTail logs the last lines of a tailscaled's log.
func logTail(t testing.TB, name, path string, lines int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	t.Logf("last %d lines of %s's tailscaled log:\n%s", lines, name, strings.Join(all[max(0, len(all)-lines):], "\n"))
}
