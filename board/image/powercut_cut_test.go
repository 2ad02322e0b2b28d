package image

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/internal/testimage"
	"github.com/homederp/homederp/board/update"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
)

// cutRecord is one power cut and the boot after it, as
// powercut-figures.json lists it.
type cutRecord struct {
	N        int      `json:"n"`
	Kind     string   `json:"kind"`     // e.g. "config save"
	CutAtS   float64  `json:"cut_at_s"` // since the activity started
	WindowS  float64  `json:"window_s"` // the cut was drawn uniformly from [0, window)
	Finished bool     `json:"finished"` // the activity was confirmed before the cut
	Phase    string   `json:"phase,omitempty"`
	BootS    float64  `json:"boot_s"`   // power on → DERP TLS with the pinned certificate
	Build    string   `json:"build"`    // the build the box booted
	Root     int      `json:"root"`     // the root partition it booted from: 2 (A) or 3 (B)
	Region   string   `json:"region"`   // the saved region's name after the boot
	Tailnet  string   `json:"tailnet"`  // tailscaled's state after the boot
	NodeKey  string   `json:"node_key"` // tailscaled's node key after the boot
	Repairs  []string `json:"repairs"`  // console lines of the box repairing /perm
	// The certificate-issuance kind: which certificate the DERP port
	// served first after the boot ("pinned self-signed" or "ACME"), by
	// when (since power-on) it served the CA's (an upper bound: the test
	// asks after the boot's other checks and the web UI login), and the
	// ACME files on /perm as the boot found them.
	Cert       string  `json:"cert,omitempty"`
	ACMEAfterS float64 `json:"acme_after_s,omitempty"`
	Stored     string  `json:"stored,omitempty"`
	Outcome    string  `json:"outcome"` // what the boot showed, in words
	OK         bool    `json:"ok"`      // every check of the boot passed
}

// cut runs the i-th of n cuts, of kind: it starts the activity, pulls
// the plug at a random moment inside the activity's window, powers the
// box on again and checks it.
func (b *cutBox) cut(i, n int, kind string) {
	t := b.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rec := cutRecord{N: i, Kind: kind}
	var (
		run      func(context.Context) error
		inflight config.Region
		pushed   string // the build an update pushes
		phaseMu  sync.Mutex
		phase    = "started"
		rootDone = make(chan struct{}, 1) // an update confirmed its root
	)
	switch kind {
	case cutConfig:
		inflight = regionFor(i)
		post, err := b.web.Prepare(ctx, "/setup/region", regionForm(inflight))
		if err != nil {
			t.Fatalf("cut %d: before the config save: %v", i, err)
		}
		run = post
	case cutLogin:
		// A box logged in already logs out first (no cut), so that the
		// cut falls in a real login.
		if b.nodeKey != "" {
			if err := b.web.Submit(ctx, "/setup/tailnet/logout", nil); err != nil {
				t.Fatalf("cut %d: logging tailscaled out before the login: %v", i, err)
			}
			b.awaitTailnet(ctx, "NeedsLogin")
			b.nodeKey = ""
		}
		run = b.tailnetLoginPost(ctx)
	case cutUpdate, cutBootWrite:
		for ts := range b.builds {
			if ts != b.running {
				pushed = ts
			}
		}
		img := updateImage(b.builds[pushed])
		opts := update.Options{
			BaseURL: b.v.baseURL(), Client: b.v.client(5 * time.Minute), Wait: 4 * time.Minute,
			Logf: func(format string, args ...any) {
				phaseMu.Lock()
				phase = fmt.Sprintf(format, args...)
				phaseMu.Unlock()
				if strings.HasPrefix(format, "root file system written") {
					rootDone <- struct{}{}
				}
			},
		}
		run = func(ctx context.Context) error { _, err := update.Push(ctx, img, opts); return err }
	case cutACME:
		// A new CA makes this a first issuance (see powercut_acme_test.go);
		// the activity ends when the DERP port serves its certificate.
		b.acme.newCA(b.hostname)
		b.v.acme = b.acme.trust
		post, err := b.web.Prepare(ctx, "/setup/cert", b.acme.certForm())
		if err != nil {
			t.Fatalf("cut %d: before the save enabling ACME: %v", i, err)
		}
		run = func(ctx context.Context) error {
			if err := post(ctx); err != nil {
				return err
			}
			return b.awaitACME(ctx, acmeBound)
		}
	}

	window := b.windows[kind]
	at := time.Duration(b.rng.Int64N(int64(window)))
	rec.WindowS = window.Seconds()
	errc := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	start := time.Now()
	go func() { errc <- run(runCtx) }()
	if kind == cutBootWrite {
		// The window starts when the box has confirmed the new root.
		select {
		case <-rootDone:
			start = time.Now()
		case err := <-errc:
			t.Fatalf("cut %d (%s): the update failed before its root was written: %v\n%s", i, kind, err, b.v.tail())
		}
	}
	timer := time.NewTimer(at)
	select {
	case <-timer.C:
	case err := <-errc:
		took := time.Since(start)
		if err != nil {
			t.Fatalf("cut %d (%s): the activity failed before the cut: %v\n%s", i, kind, err, b.v.tail())
		}
		rec.Finished = true
		b.finished(kind, took)
		<-timer.C // the plug is pulled at the drawn moment all the same
	}
	rec.CutAtS = time.Since(start).Seconds()
	b.v.kill()
	stop()
	var ordersAtCut int64
	if kind == cutACME {
		ordersAtCut = b.acme.ca.NewOrders()
		var err error
		if rec.Stored, err = storedACME(t, b.img); err != nil {
			t.Errorf("cut %d (%s): %v", i, kind, err)
		}
	}
	phaseMu.Lock()
	rec.Phase = phase
	phaseMu.Unlock()
	isUpdate := kind == cutUpdate || kind == cutBootWrite
	if !isUpdate {
		rec.Phase = ""
	}

	// Power on again, in the same namespace: the box comes back by
	// itself.
	before := b.running
	b.v = startVM(t, "amd64", b.img, b.console, vmOptions{MemoryMiB: boxMemoryMiB, NS: b.ns, ACME: b.acme.trust})
	bt := b.v.waitRelay(t, 4*time.Minute)
	rec.BootS = bt.derp.Seconds()
	rec.Repairs = b.v.repairs()
	var outcome []string
	// The pinned certificate, or (while issuing) a whole chain to the
	// CA's root: derpCheck's fetchMap takes nothing else.
	pin, key := b.v.derpCheck(t)
	switch {
	case kind == cutACME && pin == "" && key == b.key:
		rec.Cert = "ACME"
	case pin != b.pin || key != b.key:
		t.Errorf("cut %d (%s): pin %s key %s, want the first boot's %s, %s", i, kind, pin, key, b.pin, b.key)
	case kind == cutACME:
		rec.Cert = "pinned self-signed"
	}

	// The old build or the new one, from its own root partition.
	st := b.v.status(t)
	rec.Build, rec.Root = st.BuildTimestamp, b.v.rootPartition()
	allowed := []string{before}
	if isUpdate {
		allowed = append(allowed, pushed)
	}
	switch {
	case !slices.Contains(allowed, st.BuildTimestamp):
		t.Errorf("cut %d (%s): the box runs build %q, want one of %q", i, kind, st.BuildTimestamp, allowed)
	case rec.Root != b.rootOf[st.BuildTimestamp]:
		t.Errorf("cut %d (%s): build %s runs from root partition %d, want %d", i, kind, st.BuildTimestamp, rec.Root, b.rootOf[st.BuildTimestamp])
	}
	b.running = st.BuildTimestamp
	if isUpdate {
		if b.running == pushed {
			outcome = append(outcome, "the new build booted")
		} else {
			outcome = append(outcome, "the old build booted")
		}
	}

	// One whole generation of the configuration.
	b.login(ctx)
	s, err := b.web.setup(ctx)
	if err != nil {
		t.Fatalf("cut %d (%s): %v", i, kind, err)
	}
	rec.Region = s.Config.Region.Name
	wantRegions := []config.Region{b.region}
	switch {
	case kind == cutConfig && rec.Finished:
		wantRegions = []config.Region{inflight} // confirmed: it must have lasted
	case kind == cutConfig:
		wantRegions = append(wantRegions, inflight)
	}
	switch {
	case s.LoadError != "":
		t.Errorf("cut %d (%s): the box could not load its configuration: %s", i, kind, s.LoadError)
	case s.Config.Hostname != b.hostname || !slices.Contains(wantRegions, s.Config.Region):
		t.Errorf("cut %d (%s): configuration after the boot: hostname %q region %+v, want %q and one of %+v", i, kind, s.Config.Hostname, s.Config.Region, b.hostname, wantRegions)
	}
	if s.Config.Region != b.region {
		outcome = append(outcome, "the save in flight lasted")
	} else if kind == cutConfig {
		outcome = append(outcome, "the previous configuration")
	}
	b.region = s.Config.Region
	if kind == cutACME {
		switch c := s.Config.Cert; {
		case c.Mode == config.CertACMEDNS && c.ACMECA == b.acme.caURL && c.ACMECARoots != "":
		case c.Mode == config.CertSelfSigned && !rec.Finished:
		default:
			t.Errorf("cut %d (%s): certificate settings after the boot: mode %q, CA %q; want acme-dns at %s (or, before it served, self-signed)", i, kind, c.Mode, c.ACMECA, b.acme.caURL)
		}
		outcome = append(outcome, "served "+rec.Cert+" first")
		outcome = append(outcome, b.afterACMECut(ctx, i, &rec, s.Config.Cert.Mode, ordersAtCut)...)
	}

	// tailscaled: logged in with the same node key, or (cut during the
	// login) logged in or waiting for a login it then completes.
	if kind == cutLogin {
		// A login the power cut undid leaves tailscaled without a
		// profile (NoState: nothing starts it) or waiting for one
		// (NeedsLogin); one that lasted comes back Running.
		s, _ = b.awaitTailnetFor(ctx, 90*time.Second, "Running")
		if s.Tailnet.State != "Running" {
			if rec.Finished {
				t.Errorf("cut %d (%s): tailscaled needs a login after a confirmed one", i, kind)
			}
			outcome = append(outcome, fmt.Sprintf("tailscaled came up %s and needed the login again", s.Tailnet.State))
			start := time.Now()
			if err := b.tailnetLogin(ctx); err != nil {
				t.Fatalf("cut %d (%s): logging in again after the boot: %v", i, kind, err)
			}
			b.finished(cutLogin, time.Since(start))
			s = b.awaitTailnet(ctx, "Running")
		} else {
			outcome = append(outcome, "tailscaled came up logged in")
		}
		b.nodeKey = b.nodeKeyOf(s)
		if b.nodeKey == "" {
			t.Errorf("cut %d (%s): tailscaled runs with addresses %v that testcontrol has no node for", i, kind, s.Tailnet.IPs)
		}
	} else {
		s = b.awaitTailnet(ctx, "Running")
		if got := b.nodeKeyOf(s); got != b.nodeKey {
			t.Errorf("cut %d (%s): tailscaled's node key: got %q, want %q", i, kind, got, b.nodeKey)
		}
	}
	rec.Tailnet, rec.NodeKey = s.Tailnet.State, b.nodeKey

	rec.Outcome = strings.Join(outcome, "; ")
	if len(rec.Repairs) > 0 {
		rec.Outcome += fmt.Sprintf("; /perm repaired at mount (%d console lines)", len(rec.Repairs))
	}
	rec.OK = !t.Failed() // the run stops at the first cut that fails
	b.report.Cuts = append(b.report.Cuts, rec)
	t.Logf("%s", rec.line(n))
	for _, l := range rec.Repairs {
		t.Logf("    console: %s", l)
	}
}

// line is the cut's line in the test log.
func (r cutRecord) line(n int) string {
	fin := "before it finished"
	if r.Finished {
		fin = "after it finished"
	}
	phase := ""
	if r.Phase != "" {
		phase = fmt.Sprintf(", last step %q", r.Phase)
	}
	acme := ""
	if r.Kind == cutACME {
		acme = fmt.Sprintf(", the CA's certificate by %.1f s; at the cut: %s", r.ACMEAfterS, r.Stored)
	}
	return fmt.Sprintf("cut %d/%d (%s): SIGKILL at %.2f s of a %.2f s window, %s%s; boot: DERP after %.1f s, build %s on root %d, region %q, tailscaled %s%s; %s",
		r.N, n, r.Kind, r.CutAtS, r.WindowS, fin, phase, r.BootS, r.Build, r.Root, r.Region, r.Tailnet, acme, r.Outcome)
}

// login logs in to the box's web UI, which may answer a while after the
// relay does.
func (b *cutBox) login(ctx context.Context) {
	b.t.Helper()
	var err error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if b.web, err = b.v.webLogin(ctx); err == nil {
			return
		}
	}
	b.t.Fatalf("web UI login within 2 minutes: %v\n%s", err, b.v.tail())
}

// startControl runs testcontrol in the VM's namespace, where the guest
// reaches it at 10.0.2.2 (slirp's address for the host's loopback). Its
// DERP map is the box's own region, dialled on the guest's loopback:
// tailscaled only reports Running once it holds a DERP connection, and
// the box's relay is the one DERP server the guest can reach.
func (b *cutBox) startControl(region *tailcfg.DERPRegion) {
	node := *region.Nodes[0]
	node.IPv4, node.IPv6 = "127.0.0.1", "none"
	r := *region
	r.Nodes = []*tailcfg.DERPNode{&node}
	b.control = &testcontrol.Server{
		// No RequireAuthKey: testcontrol would ask for the key at
		// every register request, also a known node's after a
		// reboot, where a real control server asks for none.
		DERPMap: &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{r.RegionID: &r}},
		Logf:    func(string, ...any) {},
	}
	l := b.v.ns.MustListen("tcp4", "127.0.0.1:0")
	srv := &http.Server{Handler: b.control}
	go srv.Serve(l)
	b.t.Cleanup(func() { srv.Close() })
	b.controlURL = fmt.Sprintf("http://10.0.2.2:%d", l.Addr().(*net.TCPAddr).Port)
}

// tailnetLoginPost fetches the tailnet form's token and returns the POST
// that logs tailscaled in to testcontrol with the auth key.
func (b *cutBox) tailnetLoginPost(ctx context.Context) func(context.Context) error {
	post, err := b.web.Prepare(ctx, "/setup/tailnet", formOf("tailnet.control_url", b.controlURL, "auth_key", authKey))
	if err != nil {
		b.t.Fatalf("before the tailscaled login: %v", err)
	}
	return post
}

func (b *cutBox) tailnetLogin(ctx context.Context) error {
	return b.tailnetLoginPost(ctx)(ctx)
}

// awaitTailnet waits (bounded) for tailscaled to reach one of the
// states, as the setup page reports it.
func (b *cutBox) awaitTailnet(ctx context.Context, states ...string) *boxSetup {
	b.t.Helper()
	s, err := b.awaitTailnetFor(ctx, 3*time.Minute, states...)
	if err == nil {
		return s
	}
	b.t.Fatalf("tailscaled not %s within 3 minutes: last %+v (%v)\ntailscaled's log:\n%s", strings.Join(states, " or "), s.Tailnet, err, b.v.serviceLog("/user/tailscaled"))
	return nil
}

// awaitTailnetFor waits up to d for tailscaled to reach one of the
// states; on timeout it returns the last state seen and an error.
func (b *cutBox) awaitTailnetFor(ctx context.Context, d time.Duration, states ...string) (*boxSetup, error) {
	s := &boxSetup{}
	var err error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Second) {
		var got *boxSetup
		if got, err = b.web.setup(ctx); err == nil {
			s = got
			if slices.Contains(states, s.Tailnet.State) {
				return s, nil
			}
		}
	}
	if err == nil {
		err = fmt.Errorf("still %q after %v", s.Tailnet.State, d)
	}
	return s, err
}

// serviceLog is the recent stderr of a service on the box, for a failure
// message.
func (v *vm) serviceLog(path string) string {
	// gokrazy streams the log: read for a few seconds, for a line that
	// never comes.
	err := v.logContains(path, "\x00never", 5*time.Second)
	return err.Error()
}

// nodeKeyOf is the node key testcontrol has for the box's tailscaled,
// found by its address, or "".
func (b *cutBox) nodeKeyOf(s *boxSetup) string {
	if len(s.Tailnet.IPs) == 0 {
		return ""
	}
	for _, n := range b.control.AllNodes() {
		for _, a := range n.Addresses {
			if a.Addr().String() == s.Tailnet.IPs[0] {
				return n.Key.String()
			}
		}
	}
	return ""
}

// powerOff shuts the box down and checks its disk from outside: /perm is
// a clean ext4 and holds the configuration the last boot showed.
func (b *cutBox) powerOff() {
	t := b.t
	b.v.poweroff(t)
	l, _ := disk.NewLayout(testImageSize)
	perm := testimage.Extract(t, b.img, l.Part(disk.Perm).Offset(), l.Part(disk.Perm).Size())
	out, err := exec.Command("e2fsck", "-fn", perm).CombinedOutput()
	b.report.FinalFsckClean = err == nil
	if err != nil {
		t.Errorf("e2fsck -fn /perm after the power cuts: %v\n%s", err, out)
	} else {
		t.Logf("e2fsck -fn /perm after the power cuts: clean")
	}
	if b.acme.ca != nil {
		if sum, err := storedACME(t, b.img); err != nil {
			t.Errorf("after the power cuts: %v", err)
		} else {
			t.Logf("after the power cuts: %s", sum)
		}
	}
	doc, err := exec.Command("debugfs", "-R", "cat /homederp/"+config.FileName, perm).Output()
	if err != nil {
		t.Fatalf("debugfs cat /homederp/%s: %v", config.FileName, err)
	}
	c, err := config.Parse(doc)
	if err != nil {
		t.Errorf("/perm/homederp/%s after the power cuts: %v", config.FileName, err)
	} else if c.Region != b.region || c.Hostname != b.hostname {
		t.Errorf("/perm/homederp/%s after the power cuts: hostname %q region %+v, want %q, %+v", config.FileName, c.Hostname, c.Region, b.hostname, b.region)
	}
}
