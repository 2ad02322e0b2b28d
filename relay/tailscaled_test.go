package relay

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/internal/testwait"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"
)

// homeMap is the DERP map the test control servers hand out: only our
// relay, as region 900 "home", pinned like the map a user pastes. The
// node is given its loopback address so that no node resolves names.
func homeMap(tr *testRelay) *tailcfg.DERPMap {
	r := *tr.region
	n := *r.Nodes[0]
	n.HostName = "127.0.0.1"
	n.IPv4 = "127.0.0.1"
	n.IPv6 = "none"
	n.STUNTestIP = "127.0.0.1"
	r.Nodes = []*tailcfg.DERPNode{&n}
	return &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{r.RegionID: &r}}
}

// startNode starts a userspace-networking tailscaled in env and logs it
// in.
func startNode(t *testing.T, env *integration.TestEnv) (*integration.TestNode, *integration.Daemon) {
	t.Helper()
	n := integration.NewTestNode(t, env)
	d := n.StartDaemon()
	n.AwaitResponding()
	n.MustUp()
	n.AwaitRunning()
	return n, d
}

// pingViaHome runs `tailscale ping` from one node to another and returns
// nil once a pong comes back through DERP(home), retrying for up to
// timeout (a node may be waiting to reconnect to the relay).
func pingViaHome(t *testing.T, from, to *integration.TestNode, timeout time.Duration) error {
	t.Helper()
	ip := to.AwaitIP4()
	deadline := time.Now().Add(timeout)
	var last string
	for i := 0; i < 30 && time.Now().Before(deadline); i++ {
		out, err := from.TailscaleForOutput("ping", "-c", "3", "--until-direct=false", "--timeout=3s", ip.String()).CombinedOutput()
		last = fmt.Sprintf("%v: %s", err, out)
		if strings.Contains(string(out), "via DERP(home)") {
			t.Logf("tailscale ping %v: %s", ip, strings.TrimSpace(string(out)))
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("no pong via DERP(home) within %v; last: %s", timeout, last)
}

// awaitRefusedKey waits until the relay refuses the node with the given
// node key (the key tailscaled reports, "nodekey:…").
func awaitRefusedKey(t *testing.T, tr *testRelay, nodeKey string) {
	t.Helper()
	testwait.For(t, 60*time.Second, "refusal of "+nodeKey, func() error {
		if got := tr.srv.Status().LastRefusal.Client; got != nodeKey {
			return fmt.Errorf("last refused %q", got)
		}
		return nil
	})
}

func awaitTailscaledState(t *testing.T, tr *testRelay, prefix string) {
	t.Helper()
	testwait.For(t, 30*time.Second, "tailscaled state "+prefix, func() error {
		if st := tr.srv.Status().TailscaledState; !strings.HasPrefix(st, prefix) {
			return errString(st)
		}
		return nil
	})
}

// TestVerifyClientsWithTailscaled is the story of verify-clients with
// real tailscaled nodes built from the pinned tailscale.com: the box's
// own tailscaled and two nodes of its tailnet, all forced onto DERP,
// plus a node of another tailnet.
func TestVerifyClientsWithTailscaled(t *testing.T) {
	testenv.NeedLong(t)
	testenv.NeedCommand(t, "go") // the integration package builds tailscaled
	t.Setenv("TS_DEBUG_NEVER_DIRECT_UDP", "1")

	tr := startRelayWith(t, t.TempDir(), relayOpts{host: "127.0.0.1", pollInterval: 200 * time.Millisecond})
	derpMap := homeMap(tr)
	env := integration.NewTestEnv(t, integration.ConfigureControl(func(s *testcontrol.Server) {
		s.DERPMap = derpMap
		s.AllNodesSameUser = true
	}))

	box, boxDaemon := startNode(t, env)
	// The appliance's config change: verify-clients on, with the box's
	// socket. The relay starts a new derpserver; the box reconnects.
	if err := tr.srv.Apply(Policy{Verify: Verify{Mode: VerifyTailscaled, TailscaledSocket: box.LocalClient().Socket}}); err != nil {
		t.Fatal(err)
	}
	awaitTailscaledState(t, tr, "Running")

	n1, _ := startNode(t, env)
	n2, _ := startNode(t, env)

	t.Run("nodes of the tailnet ping through the relay", func(t *testing.T) {
		if err := pingViaHome(t, n1, n2, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		st := tr.srv.Status()
		if st.ClientsConnected < 3 || st.TailscaledPeers < 2 || st.VerifyProblem != "" {
			t.Errorf("Status: clients %d, tailscaled peers %d, problem %q; want the three nodes, two peers, none", st.ClientsConnected, st.TailscaledPeers, st.VerifyProblem)
		}
	})

	t.Run("a node of another tailnet is refused", func(t *testing.T) {
		other := integration.NewTestEnv(t, integration.ConfigureControl(func(s *testcontrol.Server) {
			s.DERPMap = derpMap
		}))
		stranger, _ := startNode(t, other)
		awaitRefusedKey(t, tr, stranger.MustStatus().Self.PublicKey.String())
	})

	t.Run("with the box's tailscaled stopped new clients are refused", func(t *testing.T) {
		boxDaemon.MustCleanShutdown(t)
		awaitTailscaledState(t, tr, "unreachable")
		if p := tr.srv.Status().VerifyProblem; !strings.Contains(p, "refused") {
			t.Errorf("VerifyProblem: got %q", p)
		}
		before := tr.srv.Status().Refused
		n3, _ := startNode(t, env)
		awaitRefusedKey(t, tr, n3.MustStatus().Self.PublicKey.String())

		t.Run("and admitted once it is back", func(t *testing.T) {
			box.StartDaemon()
			box.AwaitRunning()
			awaitTailscaledState(t, tr, "Running")
			if err := pingViaHome(t, n1, n3, 90*time.Second); err != nil {
				t.Fatal(err)
			}
			st := tr.srv.Status()
			t.Logf("refusals while the box was down: %d", st.Refused-before)
			if st.VerifyProblem != "" {
				t.Errorf("VerifyProblem after recovery: %q", st.VerifyProblem)
			}
		})
	})
}
