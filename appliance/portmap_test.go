package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/netnstest"
	"github.com/homederp/homederp/internal/routerbed"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/portmap"
	"github.com/homederp/homederp/relay/relaytest"
)

// TestReachableThroughRouter runs the real appliance, as on a box, in
// the home namespace of internal/routerbed, behind a router running
// Debian's miniupnpd, and follows a user through it: the box has the
// router forward its ports; DERP clients and STUN from the Internet reach
// it through the router's public address (and over IPv6 through the
// pinhole), and the status says so, while a client on the LAN does not
// count; ports changed in the web UI move the forwards; switching the
// feature off removes them; with the router's miniupnpd stopped, the
// status says what each protocol answered and names the manual
// port-forward.
func TestReachableThroughRouter(t *testing.T) {
	testenv.NeedLong(t)
	b := routerbed.New(t, "hd-pm")
	b.Start()
	bin := devbox.Build(t)
	box := startBox(t, b, bin)

	st := box.waitStatus(t, "the router forwards the relay's ports", func(v statusJSON) bool {
		return v.Reach.Mapping != nil && v.Reach.Mapping.AllMapped() && strings.HasPrefix(v.Reach.Mapping.IPv6, "Open")
	})
	want := []portmap.Port{{Proto: "tcp", Port: 12345}, {Proto: "udp", Port: 3478}}
	if !redirects(b, want...) {
		t.Fatalf("the router's forwards: got %v, want %v to the box\n%s", b.Redirects(), want, b.Rules())
	}
	if st.Reach.Proven || !strings.HasPrefix(st.Reach.Evidence, "Not yet proven reachable") || len(st.Reach.Checks) == 0 {
		t.Errorf("before any client: proven %v, evidence %q, checks %q", st.Reach.Proven, st.Reach.Evidence, st.Reach.Checks)
	}
	if !strings.HasPrefix(st.Reach.Hairpin, "Hairpin check (the box dialling 192.0.3.10:12345 through the router") {
		t.Errorf("hairpin: got %q, want it labelled as the box dialling its public address", st.Reach.Hairpin)
	}
	t.Logf("router: %s\nhairpin: %s", st.Reach.Router, st.Reach.Hairpin)

	t.Run("a client on the LAN does not count", func(t *testing.T) {
		box.derpClient(t, b.Router, netip.AddrPortFrom(routerbed.BoxLAN, 12345))
		st := box.waitStatus(t, "the LAN connection seen", func(v statusJSON) bool { return v.Relay.Reach.LANConnections > 0 })
		if st.Reach.Proven || st.Relay.Reach.Clients != 0 {
			t.Errorf("after a LAN client: proven %v, Internet clients %d", st.Reach.Proven, st.Relay.Reach.Clients)
		}
	})

	t.Run("DERP and STUN from the Internet", func(t *testing.T) {
		c1 := box.derpClient(t, b.Inet, netip.AddrPortFrom(routerbed.WAN, 12345))
		c2 := box.derpClient(t, b.Inet, netip.AddrPortFrom(routerbed.Box6, 12345))
		relaytest.Exchange(t, c1, c2)
		if got := stunFrom(t, b.Inet, netip.AddrPortFrom(routerbed.WAN, 3478)); got.Addr() != routerbed.Inet4 {
			t.Errorf("STUN through %v: the box saw %v, want the Internet client %v", routerbed.WAN, got, routerbed.Inet4)
		}
		if got := stunFrom(t, b.Inet, netip.AddrPortFrom(routerbed.Box6, 3478)); got.Addr() != routerbed.Inet6 {
			t.Errorf("STUN over IPv6: the box saw %v, want %v", got, routerbed.Inet6)
		}
		st := box.waitStatus(t, "reached from the Internet", func(v statusJSON) bool { return v.Reach.Proven })
		if want := regexp.MustCompile(`^Reached from the Internet by 2 clients, last at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC from (192\.0\.3\.0/24|2001:db8:ff::/48)\.$`); !want.MatchString(st.Reach.Evidence) {
			t.Errorf("evidence: got %q, want it to match %v", st.Reach.Evidence, want)
		}
		t.Logf("evidence: %s", st.Reach.Evidence)
	})

	t.Run("ports changed in the web UI move the forwards", func(t *testing.T) {
		box.savePorts(t, 23456, 3479, true)
		moved := []portmap.Port{{Proto: "tcp", Port: 23456}, {Proto: "udp", Port: 3479}}
		waitTrue(t, "the forwards moved", func() bool { return redirects(b, moved...) })
		st := box.waitStatus(t, "the status on the new ports", func(v statusJSON) bool {
			return v.Reach.Mapping.AllMapped() && v.Reach.Mapping.Mappings[0].Port.Port == 23456
		})
		if st.Reach.Proven {
			t.Errorf("the new port is proven reachable before any client used it: %q", st.Reach.Evidence)
		}
		box.derpClient(t, b.Inet, netip.AddrPortFrom(routerbed.WAN, 23456))
		box.waitStatus(t, "the new port reached from the Internet", func(v statusJSON) bool { return v.Reach.Proven })
	})

	t.Run("switched off in the web UI", func(t *testing.T) {
		box.savePorts(t, 23456, 3479, false)
		waitTrue(t, "no forwards and no pinholes", func() bool { return redirects(b) && len(b.Pinholes()) == 0 })
		st := box.waitStatus(t, "the status says off", func(v statusJSON) bool { return !v.Reach.MappingOn })
		if !strings.HasPrefix(st.Reach.Router, "Port mapping is off") || len(st.Reach.ManualForward) != 2 {
			t.Errorf("switched off: router %q, manual forward %+v", st.Reach.Router, st.Reach.ManualForward)
		}
	})

	t.Run("miniupnpd stopped", func(t *testing.T) {
		b.Stop()
		box.savePorts(t, 23456, 3479, true)
		st := box.waitStatus(t, "every protocol tried", func(v statusJSON) bool {
			return v.Reach.Mapping != nil && len(v.Reach.Mapping.Answers) >= 3 && !v.Reach.Mapping.LastRound.IsZero()
		})
		for _, a := range st.Reach.Mapping.Answers {
			if a.OK || !strings.Contains(a.Result, "no answer") && !strings.Contains(a.Result, "no Internet gateway device") {
				t.Errorf("answer of %s: got %+v, want no answer", a.Protocol, a)
			}
		}
		forward := fmt.Sprint(st.Reach.ManualForward)
		for _, want := range []string{"TCP 23456 192.168.1.10", "UDP 3479 192.168.1.10"} {
			if !strings.Contains(forward, want) {
				t.Errorf("manual forward: got %s, want %q", forward, want)
			}
		}
		if !strings.Contains(st.Reach.Router, "does not forward tcp 23456, udp 3479") {
			t.Errorf("router: got %q", st.Reach.Router)
		}
		t.Logf("router: %s\nanswers: %+v", st.Reach.Router, st.Reach.Mapping.Answers)
	})
}

// statusJSON is the part of the status page's JSON the test reads.
type statusJSON struct {
	Warnings []string `json:"warnings"`
	Relay    struct {
		Reach relay.Reach
	} `json:"relay"`
	Reach struct {
		Proven        bool            `json:"proven"`
		Evidence      string          `json:"evidence"`
		Checks        []string        `json:"checks"`
		MappingOn     bool            `json:"port_mapping_enabled"`
		Router        string          `json:"router"`
		Mapping       *portmap.Status `json:"port_mapping"`
		Hairpin       string          `json:"hairpin"`
		ManualForward []struct {
			Proto string `json:"proto"`
			Port  int    `json:"port"`
			To    string `json:"to"`
		} `json:"manual_forward"`
	} `json:"reach"`
}

// netBox is the appliance running in the bed's home namespace as on a
// box: every address, port 80 for the web UI, state in a directory.
type netBox struct {
	b        *routerbed.Bed
	stateDir string
	web      *http.Client
	password string
	certs    *x509.CertPool
}

func startBox(t *testing.T, b *routerbed.Bed, bin string) *netBox {
	t.Helper()
	dir := t.TempDir()
	store, err := config.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.Hostname = "derp.example.com"
	// Not the host's tailscaled: the box has none here.
	c.Relay.TailscaledSocket = filepath.Join(dir, "no-tailscaled.sock")
	if err := store.Save(c); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("test-password\n"), 0600); err != nil {
		t.Fatal(err)
	}
	cmd := b.Home.Command(context.Background(), bin, "-state-dir", dir, "-password-file", pwFile)
	cmd.Stdout, cmd.Stderr = devbox.LogWriter(t), devbox.LogWriter(t)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// ip netns exec passes the signal on to the appliance.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("appliance after SIGTERM: %v, want a clean exit", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Errorf("appliance did not stop within 15 s of SIGTERM")
			<-exited
		}
	})
	nb := &netBox{b: b, stateDir: dir, password: "test-password",
		web: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: b.Home.Dialer().DialContext},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	waitTrue(t, "the web UI answers", func() bool {
		resp, err := nb.do("GET", "/", nil)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	ss, err := relay.SelfSigned(filepath.Join(dir, "certs"), c.Hostname, time.Now(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	nb.certs = x509.NewCertPool()
	nb.certs.AddCert(ss.Cert.Leaf)
	return nb
}

func (nb *netBox) do(method, path string, form url.Values) (*http.Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, "http://"+routerbed.BoxLAN.String()+path, body)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("gokrazy", nb.password)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	return nb.web.Do(req)
}

func (nb *netBox) status(t *testing.T) statusJSON {
	t.Helper()
	resp, err := nb.do("GET", "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v statusJSON
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("status JSON: %v", err)
	}
	return v
}

// waitStatus polls the status page until cond holds, for at most 60 s.
func (nb *netBox) waitStatus(t *testing.T, what string, cond func(statusJSON) bool) statusJSON {
	t.Helper()
	var v statusJSON
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if v = nb.status(t); cond(v) {
			return v
		}
	}
	t.Fatalf("%s: not within 60 s; status: %+v", what, v.Reach)
	return v
}

var csrfRx = regexp.MustCompile(`action="/setup/ports#ports"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)">`)

// savePorts submits the setup page's step 2 as a person would.
func (nb *netBox) savePorts(t *testing.T, derp, stun int, mapping bool) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+routerbed.BoxLAN.String()+"/setup", nil)
	req.SetBasicAuth("gokrazy", nb.password)
	resp, err := nb.web.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRx.FindSubmatch(page)
	if m == nil {
		t.Fatalf("GET /setup: %s, no ports form", resp.Status)
	}
	form := url.Values{"csrf": {string(m[1])}, "relay.derp_port": {fmt.Sprint(derp)}, "relay.stun_port": {fmt.Sprint(stun)}}
	if mapping {
		form.Set("port_mapping.enabled", "on")
	}
	resp, err = nb.do("POST", "/setup/ports", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /setup/ports: %s\n%s", resp.Status, body)
	}
}

// derpClient connects a real derphttp client from ns to the relay at to
// (the router's public address, the box's IPv6 or LAN address).
func (nb *netBox) derpClient(t *testing.T, ns *netnstest.NS, to netip.AddrPort) *relaytest.Client {
	t.Helper()
	u := fmt.Sprintf("https://derp.example.com:%d/derp", to.Port())
	var c *relaytest.Client
	var err error
	for range 20 { // the new relay may still be starting after a port change
		c, err = relaytest.ConnectVia(t, u, nb.certs, func(ctx context.Context, network, _ string) (net.Conn, error) {
			return ns.Dialer().DialContext(ctx, "tcp", to.String())
		})
		if err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("DERP client from %s to %v: %v", ns.Name, to, err)
	}
	if v, err := relaytest.AwaitVerdict(c, 10*time.Second); v != relaytest.Admitted {
		t.Fatalf("DERP client from %s to %v: %v (%v), want admitted", ns.Name, to, v, err)
	}
	return c
}

// stunFrom sends a STUN request from ns to to and returns the address
// the relay saw.
func stunFrom(t *testing.T, ns *netnstest.NS, to netip.AddrPort) netip.AddrPort {
	t.Helper()
	network := "udp4"
	if to.Addr().Is6() {
		network = "udp6"
	}
	pc := ns.MustListenPacket(network, ":0")
	ans := detect.QuerySTUN(context.Background(), pc, []netip.AddrPort{to}, 3*time.Second)
	if ans[0].Err != nil {
		t.Fatalf("STUN to %v from %s: %v", to, ns.Name, ans[0].Err)
	}
	return ans[0].Mapped
}

// redirects reports whether the router forwards exactly these ports to
// the box.
func redirects(b *routerbed.Bed, ports ...portmap.Port) bool {
	got := b.Redirects()
	if len(got) != len(ports) {
		return false
	}
	for _, p := range ports {
		found := false
		for _, r := range got {
			found = found || r.Proto == p.Proto && r.Port == p.Port && r.To == netip.AddrPortFrom(routerbed.BoxLAN, p.Port)
		}
		if !found {
			return false
		}
	}
	return true
}

func waitTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within 60 s", what)
}
