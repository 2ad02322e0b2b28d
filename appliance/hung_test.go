package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
)

// A hung admission checker, tested from outside: the appliance binary
// runs as its own process (-dev) with verify-clients against a real
// tailscaled (built from the pinned tailscale.com, logged in to a test
// control server) or a verify URL, and the checker stops answering: the
// tailscaled is stopped with SIGSTOP, the URL takes requests and never
// answers. What a year in a cupboard needs (issue 13, item 1):
//
//   - new clients are refused within 2 s (fail closed), and connected
//     ones keep relaying;
//   - the status says why, and the status page, /metrics and the public
//     /derpmap.json stay responsive;
//   - a configuration change (new ports: a relay restart) and shutdown
//     return promptly;
//   - the goroutine count stays bounded while clients keep knocking;
//   - admissions resume within 2 s of the checker answering again.
//
// The figures are logged as "HUNG <checker>:" lines.

// hungLimits are the bounds the test holds the appliance to.
const (
	refuseWithin  = 2 * time.Second        // a new client's refusal with the checker hung
	resumeWithin  = 2 * time.Second        // the first admission after the checker answers again
	pageWithin    = 2 * time.Second        // the status page (it asks tailscaled itself, for at most 1 s)
	promptWithin  = 500 * time.Millisecond // /metrics and the public /derpmap.json
	applyWithin   = time.Second            // saving new ports, until the answer says the relay serves them
	stopWithin    = 3 * time.Second        // SIGTERM to exit
	knockers      = 40                     // clients connecting while the checker hangs
	goroutineHeap = 200                    // goroutines the knocking may add, at most
)

// hungChecker is the admission checker under test.
type hungChecker struct {
	name   string
	config func(*config.Relay)
	admit  func(t *testing.T) key.NodePrivate // a key the checker admits
	hang   func(t *testing.T)
	resume func(t *testing.T)
	// problem is what the relay's status must say while hung.
	problem *regexp.Regexp
}

func TestHungTailscaled(t *testing.T) {
	testenv.NeedLong(t)
	testenv.NeedCommand(t, "go") // the integration package builds tailscaled
	env := integration.NewTestEnv(t, integration.ConfigureControl(func(s *testcontrol.Server) {
		s.AllNodesSameUser = true
	}))
	box := integration.NewTestNode(t, env)
	d := box.StartDaemon()
	box.AwaitResponding()
	box.MustUp()
	box.AwaitRunning()
	lc := box.LocalClient()
	self := box.MustStatus().Self
	boxNode := env.Control.Node(self.PublicKey)
	if boxNode == nil {
		t.Fatal("the control server does not know the box's node")
	}
	t.Cleanup(func() { d.Process.Signal(syscall.SIGCONT) })

	runHung(t, hungChecker{
		name: "tailscaled",
		config: func(r *config.Relay) {
			r.VerifyClients = true
			r.TailscaledSocket = lc.Socket
		},
		admit: func(t *testing.T) key.NodePrivate {
			// A node of the tailnet: the control server tells the
			// box's tailscaled about it.
			priv := key.NewNode()
			nk := priv.Public()
			r := nk.Raw32()
			ip := netip.AddrFrom4([4]byte{100, 64 + r[0]%64, r[1], r[2]})
			env.Control.UpdateNode(&tailcfg.Node{
				ID:                tailcfg.NodeID(binary.LittleEndian.Uint64(r[:]) >> 1),
				StableID:          tailcfg.StableNodeID(fmt.Sprintf("HUNG%x", r[:8])),
				User:              boxNode.User,
				Key:               nk,
				Machine:           key.NewMachine().Public(),
				DiscoKey:          key.NewDisco().Public(),
				MachineAuthorized: true,
				Addresses:         []netip.Prefix{netip.PrefixFrom(ip, 32)},
				AllowedIPs:        []netip.Prefix{netip.PrefixFrom(ip, 32)},
			})
			testwait.For(t, 30*time.Second, "the box's tailscaled knows the new node", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_, err := lc.WhoIsNodeKey(ctx, nk)
				return err
			})
			return priv
		},
		hang:    func(t *testing.T) { signalDaemon(t, d, syscall.SIGSTOP) },
		resume:  func(t *testing.T) { signalDaemon(t, d, syscall.SIGCONT) },
		problem: regexp.MustCompile(`tailscaled is not answering`),
	})
}

// signalDaemon stops (SIGSTOP) or continues (SIGCONT) tailscaled and
// waits until the kernel says it is so.
func signalDaemon(t *testing.T, d *integration.Daemon, sig syscall.Signal) {
	t.Helper()
	start := time.Now()
	if err := d.Process.Signal(sig); err != nil {
		t.Fatalf("%v to tailscaled: %v", sig, err)
	}
	testwait.For(t, 5*time.Second, fmt.Sprintf("tailscaled %v", sig), func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.Process.Pid))
		if err != nil {
			return err
		}
		// pid (comm) state ...; comm may hold spaces.
		_, rest, _ := strings.Cut(string(b), ") ")
		stopped := strings.HasPrefix(rest, "T")
		if stopped != (sig == syscall.SIGSTOP) {
			return fmt.Errorf("state %.1s", rest)
		}
		return nil
	})
	t.Logf("tailscaled %v took effect in %v", sig, time.Since(start).Round(time.Microsecond))
}

func TestHungVerifyURL(t *testing.T) {
	var (
		mu      sync.Mutex
		hung    bool
		allow   = map[key.NodePublic]bool{}
		release = make(chan struct{})
	)
	verifier := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req tailcfg.DERPAdmitClientRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		h, ok := hung, allow[req.NodePublic]
		mu.Unlock()
		if h {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		json.NewEncoder(w).Encode(tailcfg.DERPAdmitClientResponse{Allow: ok})
	}))
	t.Cleanup(func() {
		close(release)
		verifier.Close()
	})
	setHung := func(h bool) {
		mu.Lock()
		hung = h
		mu.Unlock()
	}
	runHung(t, hungChecker{
		name:   "verify URL",
		config: func(r *config.Relay) { r.VerifyClientURL = verifier.URL + "/verify" },
		admit: func(t *testing.T) key.NodePrivate {
			priv := key.NewNode()
			mu.Lock()
			allow[priv.Public()] = true
			mu.Unlock()
			return priv
		},
		hang:    func(*testing.T) { setHung(true) },
		resume:  func(*testing.T) { setHung(false) },
		problem: regexp.MustCompile(`the verify URL did not answer within`),
	})
}

// runHung is the story both checkers go through.
func runHung(t *testing.T, hc hungChecker) {
	bin := devbox.Build(t)
	dir := t.TempDir()
	derpPort, stunPort := devbox.FreePort(t), devbox.FreePort(t)
	store, err := config.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.Hostname = "localhost"
	c.Relay.DERPPort, c.Relay.STUNPort = derpPort, stunPort
	hc.config(&c.Relay)
	if err := store.Save(c); err != nil {
		t.Fatal(err)
	}
	box := devbox.Start(t, bin, devbox.Options{StateDir: dir, WebUIAddr: "127.0.0.1:0"})
	base, pw, ok := box.WebUI()
	if !ok {
		t.Fatalf("no web UI in the summary:\n%s", box.Summary)
	}
	web := newWebClient(t, base, pw)
	region := devbox.ReadMap(t, dir).Regions[900]
	logf := func(format string, args ...any) { t.Logf("HUNG %s: "+format, append([]any{hc.name}, args...)...) }

	connect := func(t *testing.T, priv key.NodePrivate) *relaytest.Client {
		t.Helper()
		cl, err := relaytest.TryConnectKey(t, region, priv)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		return cl
	}
	a, b := connect(t, hc.admit(t)), connect(t, hc.admit(t))
	relaytest.ExpectVerdict(t, a, relaytest.Admitted, 10*time.Second)
	relaytest.ExpectVerdict(t, b, relaytest.Admitted, 10*time.Second)
	relaytest.Exchange(t, a, b)
	// Keys the checker admits, made while it answers: refused while it
	// hangs, they are refused for want of a verdict, not judged.
	var known []key.NodePrivate
	for range 6 {
		known = append(known, hc.admit(t))
	}
	before := metric(t, web, "goroutines")

	hc.hang(t)
	hungAt := time.Now()
	t.Run("new clients are refused within 2s", func(t *testing.T) {
		var worst time.Duration
		for _, k := range known[:3] {
			took := relaytest.ExpectVerdict(t, connect(t, k), relaytest.Refused, 10*time.Second)
			worst = max(worst, took)
		}
		if worst > refuseWithin {
			t.Errorf("slowest refusal %v, want under %v", worst, refuseWithin)
		}
		logf("new clients refused after at most %v", worst.Round(time.Millisecond))
	})
	t.Run("connected clients keep relaying", func(t *testing.T) {
		relaytest.Exchange(t, a, b)
	})
	t.Run("the status says why, and the pages stay responsive", func(t *testing.T) {
		var st struct {
			Relay struct {
				VerifyProblem, TailscaledState string
				LastRefusal                    struct{ Reason string }
				RefusedNoVerdict               int64
			}
		}
		took := timed(func() {
			resp, body := web.get("/", "application/json")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status page: %s", resp.Status)
			}
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatal(err)
			}
		})
		if took > pageWithin {
			t.Errorf("status page took %v, want under %v", took, pageWithin)
		}
		said := st.Relay.VerifyProblem + " | " + st.Relay.TailscaledState + " | " + st.Relay.LastRefusal.Reason
		if !hc.problem.MatchString(said) || st.Relay.RefusedNoVerdict < 3 {
			t.Errorf("status: %q, %d refused without a verdict; want it to say %q, 3 or more", said, st.Relay.RefusedNoVerdict, hc.problem)
		}
		metricsTook := timed(func() { metric(t, web, "goroutines") })
		mapTook := timed(func() { publicMap(t, derpPort) })
		if metricsTook > promptWithin || mapTook > promptWithin {
			t.Errorf("/metrics took %v, /derpmap.json %v; want each under %v", metricsTook, mapTook, promptWithin)
		}
		logf("status page %v, /metrics %v, public /derpmap.json %v", took.Round(time.Millisecond), metricsTook.Round(time.Millisecond), mapTook.Round(time.Millisecond))
	})
	t.Run("goroutines stay bounded while clients knock", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range knockers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i) * 50 * time.Millisecond) // 20 a second
				cl, err := relaytest.TryConnectKey(t, region, key.NewNode())
				if err == nil {
					relaytest.AwaitVerdict(cl, 10*time.Second)
					cl.Close()
				}
			}()
		}
		knocked := make(chan struct{})
		go func() { wg.Wait(); close(knocked) }()
		peak := before
		for i, stop := 0, false; !stop && i < 100; i++ {
			select {
			case <-knocked:
				stop = true
			case <-time.After(200 * time.Millisecond):
			}
			peak = max(peak, metric(t, web, "goroutines"))
		}
		var after int
		testwait.For(t, 10*time.Second, "goroutines back near the start", func() error {
			if after = metric(t, web, "goroutines"); after > before+20 {
				return fmt.Errorf("%d goroutines, %d before the hang", after, before)
			}
			return nil
		})
		if peak > before+goroutineHeap {
			t.Errorf("%d clients knocking raised the goroutines from %d to %d, want at most %d more", knockers, before, peak, goroutineHeap)
		}
		logf("goroutines %d before the hang, peak %d with %d clients knocking, %d after", before, peak, knockers, after)
	})
	t.Run("a configuration change applies promptly", func(t *testing.T) {
		newPort := devbox.FreePort(t)
		answer, took := web.submitTimed("/setup/ports", "ports", url.Values{"relay.derp_port": {strconv.Itoa(newPort)}, "relay.stun_port": {strconv.Itoa(stunPort)}})
		if want := fmt.Sprintf("the relay now serves DERP on TCP %d", newPort); !strings.Contains(answer, want) || took > applyWithin {
			t.Errorf("saving new ports took %v and answered %q; want under %v and %q", took, answer, applyWithin, want)
		}
		logf("new ports saved and applied (a relay restart): the POST answered in %v", took.Round(time.Millisecond))
		testwait.For(t, 5*time.Second, "derpmap.json with the new port", func() error {
			region = devbox.ReadMap(t, dir).Regions[900]
			if got := region.Nodes[0].DERPPort; got != newPort {
				return fmt.Errorf("DERP port %d", got)
			}
			return nil
		})
		derpPort = newPort
		relaytest.ExpectVerdict(t, connect(t, known[3]), relaytest.Refused, 10*time.Second)
	})
	t.Run("admissions resume within 2s of the checker answering", func(t *testing.T) {
		priv := known[4]
		hc.resume(t)
		resumed := time.Now()
		var took time.Duration
		for i := 0; ; i++ {
			if v, _ := relaytest.AwaitVerdict(connect(t, priv), 5*time.Second); v == relaytest.Admitted {
				took = time.Since(resumed)
				break
			}
			if time.Since(resumed) > 10*time.Second || i > 100 {
				t.Fatalf("no admission within %v of the checker answering again", time.Since(resumed))
			}
		}
		if took > resumeWithin {
			t.Errorf("first admission %v after the checker answered again, want under %v", took, resumeWithin)
		}
		logf("admitting again %v after the checker answered (it was hung for %v)", took.Round(time.Millisecond), resumed.Sub(hungAt).Round(time.Second))
	})
	t.Run("shutdown is prompt with the checker hung", func(t *testing.T) {
		hc.hang(t)
		defer hc.resume(t)
		cl := connect(t, known[5])
		go relaytest.AwaitVerdict(cl, 10*time.Second) // a check in flight
		time.Sleep(200 * time.Millisecond)
		took := timed(func() { box.Stop(t) })
		if took > stopWithin {
			t.Errorf("SIGTERM to exit took %v, want under %v", took, stopWithin)
		}
		logf("SIGTERM to exit %v with a check in flight", took.Round(time.Millisecond))
	})
}

func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// metric reads one integer metric from the web UI's /metrics.
func metric(t *testing.T, web *webClient, name string) int {
	t.Helper()
	resp, body := web.get("/metrics", "text/plain")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s:\n%.1000s", name, body)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// publicMap fetches /derpmap.json from the relay's public port.
func publicMap(t *testing.T, port int) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/derpmap.json", port))
	if err != nil {
		t.Fatalf("public /derpmap.json: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m tailcfg.DERPMap
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &m) != nil || !slices.Contains(m.RegionIDs(), 900) {
		t.Fatalf("public /derpmap.json: %s\n%s", resp.Status, b)
	}
}
