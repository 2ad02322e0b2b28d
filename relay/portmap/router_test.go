package portmap

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/routerbed"
	"github.com/homederp/homederp/internal/testenv"
)

// TestNoRouter: with miniupnpd stopped, the status names every protocol
// it tried and what each answered; once the router answers, the retry
// maps the ports.
func TestNoRouter(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	m := newBedMapper(t, b, t.TempDir(), nil)
	m.setPorts(bedPorts...)
	waitFor(t, 15*time.Second, "a round with every protocol", func() bool { return len(m.Status().Answers) >= 3 })
	st := m.Status()
	want := map[string]string{
		PCP:                          "no answer from 192.168.1.1:5351",
		NATPMP:                       "no answer from 192.168.1.1:5351",
		UPnP:                         "no Internet gateway device answered an SSDP search",
		"PCP over IPv6":              "no answer from [2001:db8:1::1]:5351",
		"UPnP IPv6 firewall control": "no Internet gateway device",
	}
	for _, a := range st.Answers {
		if a.OK || !strings.Contains(a.Result, want[a.Protocol]) {
			t.Errorf("answer: got %+v, want it to say %q", a, want[a.Protocol])
		}
	}
	if !strings.Contains(st.Problem, "does not forward tcp 12345, udp 3478") || st.AllMapped() {
		t.Errorf("problem: got %q", st.Problem)
	}
	t.Logf("status with no router: %+v", st)

	b.Start()
	took := waitFor(t, 15*time.Second, "mapped once the router answers", func() bool { return m.Status().AllMapped() })
	t.Logf("mapped %v after miniupnpd started", took.Round(time.Millisecond))
}

// TestRefused: a port the router's rules forbid (miniupnpd allows only
// 1024-65535) is refused by PCP and UPnP, and the status says so.
// (miniupnpd answers such a NAT-PMP request only after trying every
// other external port for many seconds, which a test cannot wait for.)
func TestRefused(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	b.Start()
	for _, tc := range []struct{ proto, want string }{
		{PCP, "refused: CANNOT_PROVIDE_EXTERNAL"},
		{UPnP, "refused: "},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			m := newBedMapper(t, b, t.TempDir(), []string{tc.proto})
			m.setPorts(Port{"tcp", 443, "DERP"})
			// The answer wanted, not any: on a loaded machine a round
			// may miss the router and the retry ask again.
			var st Status
			waitFor(t, 20*time.Second, "the refusal", func() bool {
				st = m.Status()
				return len(st.Answers) > 0 && !st.Answers[0].OK && strings.Contains(st.Answers[0].Result, tc.want)
			})
			if !strings.Contains(st.Problem, "does not forward tcp 443") {
				t.Errorf("problem: got %q", st.Problem)
			}
			waitFor(t, 5*time.Second, "no forward left on the router", func() bool { return len(b.Redirects()) == 0 })
			t.Logf("%s: %s", tc.proto, st.Answers[0].Result)
			m.stop()
		})
	}
}

// TestCGNATRouter: a router whose own WAN address is the carrier's
// (100.64.0.0/10) cannot forward anything from the Internet; miniupnpd
// refuses every protocol, and the status says each refusal.
func TestCGNATRouter(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	b.SetWAN("100.64.0.10")
	b.Start()
	m := newBedMapper(t, b, t.TempDir(), nil)
	m.setPorts(bedPorts...)
	var st Status
	waitFor(t, 30*time.Second, "every protocol refusing", func() bool {
		st = m.Status()
		n := 0
		for _, a := range st.Answers {
			if !a.OK && strings.Contains(a.Result, "refused") {
				n++
			}
		}
		return n >= 3
	})
	if st.AllMapped() || len(b.Redirects()) != 0 {
		t.Errorf("mapped behind CGNAT: %+v, %v", st.Mappings, b.Redirects())
	}
	t.Logf("behind CGNAT: %+v", st.Answers)
}

// TestForeignMappingsLeftAlone: a UPnP mapping of the DERP port that
// another program made for the box, and one of an unrelated port, are
// neither taken over nor removed.
func TestForeignMappingsLeftAlone(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	b.Start()
	ctx := context.Background()
	m0, err := New(Options{Net: b.Home.Dialer()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := discoverIGD(ctx, b.Home.Dialer(), m0.hc, routerbed.Gateway, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []uint16{derpPort, 5000} {
		if err := d.wan[0].AddPortMappingCtx(ctx, "", p, "TCP", p, routerbed.BoxLAN.String(), true, "a game console's forward", 0); err != nil {
			t.Fatal(err)
		}
	}
	foreign := []Port{{"tcp", derpPort, ""}, {"tcp", 5000, ""}}
	m := newBedMapper(t, b, t.TempDir(), nil)
	m.setPorts(bedPorts...)
	waitFor(t, 10*time.Second, "both ports forwarded", func() bool { return m.Status().AllMapped() })
	st := m.Status()
	if got := mappingFor(st, "tcp", derpPort, false); !got.Foreign || !strings.Contains(got.Error, "a game console's forward") {
		t.Errorf("tcp %d: got %+v, want it reported as someone else's forward", derpPort, got)
	}
	if got := mappingFor(st, "udp", stunPort, false); got.Foreign || got.Via != PCP {
		t.Errorf("udp %d: got %+v, want the box's own PCP mapping", stunPort, got)
	}
	m.setPorts()
	waitFor(t, 10*time.Second, "the box's own mapping removed", func() bool { return redirected(b, foreign...) })
	for _, p := range foreign {
		_, client, _, desc, _, err := d.wan[0].GetSpecificPortMappingEntryCtx(ctx, "", p.Port, "TCP")
		if err != nil || client != routerbed.BoxLAN.String() || desc != "a game console's forward" {
			t.Errorf("foreign mapping of tcp %d after switching off: %v %q %q", p.Port, err, client, desc)
		}
	}
}

// TestRestartedBoxRemovesItsMappings: the state file lets a box that
// restarted (a new Mapper) remove what the old one made, with PCP's
// nonce.
func TestRestartedBoxRemovesItsMappings(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	b.Start()
	dir := t.TempDir()
	m := newBedMapper(t, b, dir, nil)
	m.setPorts(bedPorts...)
	waitFor(t, 10*time.Second, "mapped", func() bool { return redirected(b, bedPorts...) && pinholed(b, bedPorts...) })
	m.stop()

	m2 := newBedMapper(t, b, dir, nil)
	m2.setPorts()
	waitFor(t, 10*time.Second, "removed by the restarted box", func() bool { return redirected(b) && pinholed(b) })
}

// TestCorruptState: a state file that does not parse is an error, not
// a silent reset that would forget mappings to remove.
func TestCorruptState(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte("{not json"), 0600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Net: nopNet{}, StateDir: dir}); err == nil || !strings.Contains(err.Error(), StateFile) {
		t.Errorf("New with a corrupt state: got %v, want an error naming %s", err, StateFile)
	}
}

type nopNet struct{}

func (nopNet) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, fmt.Errorf("no network")
}

func (nopNet) ListenPacket(context.Context, string, string) (net.PacketConn, error) {
	return nil, fmt.Errorf("no network")
}
