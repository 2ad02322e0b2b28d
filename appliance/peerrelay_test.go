package main

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay/peerrelay"
	"tailscale.com/client/local"
	"tailscale.com/tstest/integration"
)

// TestPeerRelayService runs the appliance in-process against a real
// tailscaled: a relay port someone set by hand is left alone while the
// switch was never on; the switch sets it; a tailscaled that lost it (a
// new login profile) gets it back on the next pass; switching off clears
// it.
func TestPeerRelayService(t *testing.T) {
	testenv.NeedLong(t)
	env := integration.NewTestEnv(t)
	node := integration.NewTestNode(t, env)
	node.StartDaemon()
	node.AwaitResponding()
	node.MustUp()
	node.AwaitRunning()
	lc := node.LocalClient()
	ctx := context.Background()

	a, err := start(options{dev: true, stateDir: t.TempDir(), derpPort: devbox.FreePort(t), stunPort: devbox.FreePort(t), webuiAddr: "127.0.0.1:0"}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	byHand, port := devbox.FreePort(t), devbox.FreePort(t)
	if _, err := peerrelay.Apply(ctx, lc, byHand); err != nil {
		t.Fatal(err)
	}
	save := func(modify func(c *config.Config)) {
		t.Helper()
		c := a.store.Config()
		c.Relay.TailscaledSocket = lc.Socket
		modify(&c)
		if err := a.store.Save(c); err != nil {
			t.Fatal(err)
		}
	}
	awaitPref := func(what string, want int) {
		t.Helper()
		testwait.For(t, 10*time.Second, what, func() error {
			if got := pref(t, lc); got != want {
				return fmt.Errorf("relay port %d, want %d", got, want)
			}
			return nil
		})
	}

	save(func(c *config.Config) {}) // the switch is off, as on a fresh box
	time.Sleep(time.Second)         // the pass on that change
	if got := pref(t, lc); got != byHand {
		t.Errorf("a switch never turned on changed the relay port set by hand: got %d, want %d", got, byHand)
	}

	save(func(c *config.Config) { c.PeerRelay.Enabled, c.PeerRelay.Port = true, port })
	awaitPref("the switch on", port)

	if _, err := peerrelay.Apply(ctx, lc, 0); err != nil {
		t.Fatal(err)
	}
	save(func(c *config.Config) { c.Region.Name = "Home, again" })
	awaitPref("the setting restored", port)

	save(func(c *config.Config) { c.PeerRelay.Enabled = false })
	awaitPref("the switch off", 0)
}

func pref(t *testing.T, lc *local.Client) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := peerrelay.Read(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	return st.Port
}

func TestForwardedEndpoints(t *testing.T) {
	on := config.Default()
	on.PeerRelay = config.PeerRelay{Enabled: true, Port: 40000}
	off := config.Default()
	public := netip.MustParseAddr("203.0.113.9")
	for _, tt := range []struct {
		name string
		c    config.Config
		ds   ddns.Status
		want []netip.AddrPort
	}{
		{"the line's address, the relay's port", on, ddns.Status{PublicIPv4: public}, []netip.AddrPort{netip.MustParseAddrPort("203.0.113.9:40000")}},
		{"relay off", off, ddns.Status{PublicIPv4: public}, nil},
		{"no ddns", on, ddns.Status{}, nil},
		{"CGNAT", on, ddns.Status{PublicIPv4: public, CGNAT: true}, nil},
		{"no IPv4 of its own", on, ddns.Status{PublicIPv4: public, NoIPv4: true}, nil},
	} {
		if got := forwardedEndpoints(tt.c, tt.ds); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
