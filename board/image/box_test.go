package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/internal/testimage"
	"github.com/homederp/homederp/board/update"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/relay/relaytest"
)

// boxMemoryMiB is the VM's RAM: a Raspberry Pi Zero 2 W's, the smallest
// board homederp supports.
const boxMemoryMiB = 512

// boxRun says how much a run of the box measures.
type boxRun struct {
	clients int // DERP clients connected for the loaded-memory figures
}

// runBox builds the amd64 image and takes the box's figures in qemu, in
// the order a box lives through them:
//
//  1. first power-on of a new box: power on → STUN answers, → the DERP
//     port serves the certificate its map pins (the two figures are taken
//     side by side), where the time went (firmware, kernel, init), the
//     memory at idle, then with run.clients DERP clients connected;
//  2. `board update` to a second build, until the new build serves, and
//     where that time went (upload, fsync, reboot request, kexec, kernel,
//     start);
//  3. a power cut (qemu killed) and power on again: the same figures;
//  4. power off, and the disk checked from outside.
//
// (A board without a real-time clock is runArm64's.)
//
// It checks what it measures (the pin, the DERP key, the relay after the
// update) and stops t if a figure cannot be taken; it never compares a
// figure with its target.
func runBox(t testing.TB, run boxRun) *figures {
	testenv.NeedRoot(t) // the network namespace
	for _, c := range []string{"ip", "e2fsck", "debugfs", "mtype"} {
		testenv.NeedCommand(t, c)
	}
	// Both builds first: compiling while the VM runs would slow it.
	first := buildBoard(t, "amd64", firstTimestamp)
	second := buildBoard(t, "amd64", secondTimestamp)
	out := outputDir(t)
	f := &figures{}

	// The VM writes its disk; boot a copy.
	img := testimage.Extract(t, first.image, 0, testImageSize)
	console := filepath.Join(out, "board-qemu-console.log")
	os.Remove(console) // a power cycle appends to it
	v := startVM(t, "amd64", img, console, vmOptions{MemoryMiB: boxMemoryMiB})
	bt := v.waitRelay(t, 4*time.Minute)
	f.boot(t, v, bt, "first power-on", "boot")

	st := v.status(t)
	if st.BuildTimestamp != first.res.Timestamp || st.Hostname != "homederp" || st.PermDev != "/dev/vda4" {
		t.Errorf("gokrazy status: got %+v, want build %s on homederp with /perm on /dev/vda4", st, first.res.Timestamp)
	}
	f.memory("at idle", v.idleMemory(t), "rss-idle")
	pin, key := v.derpCheck(t)
	t.Logf("DERP: certificate pinned by the map (%s), server key %s", pin, key)
	v.checkWebUI(t)
	if run.clients > 0 {
		f.withClients(t, v, run.clients)
	}

	v.refuseBadUpdates(t, second)
	f.update(t, v, second)
	pin2, key2 := v.derpCheck(t)
	if pin2 != pin || key2 != key {
		t.Errorf("after the update: pin %s key %s, want the same as before (%s, %s): /perm/homederp did not survive", pin2, key2, pin, key)
	}
	// Pull the plug, and power on again: the box comes back by itself,
	// with the same key and pin, and /perm (its journal replayed) clean.
	v.kill()
	v = startVM(t, "amd64", img, console, vmOptions{MemoryMiB: boxMemoryMiB, NS: v.ns})
	bt = v.waitRelay(t, 4*time.Minute)
	f.boot(t, v, bt, "power on after a power cut", "powercut")
	if pin3, key3 := v.derpCheck(t); pin3 != pin || key3 != key {
		t.Errorf("after the power cut: pin %s key %s, want the same as before (%s, %s)", pin3, key3, pin, key)
	}
	v.poweroff(t)
	checkDiskAfterUpdate(t, img, second)
	return f
}

// boot records a boot's figures: the two headline ones, and where the
// time went, read from the console's timeline.
func (f *figures) boot(t testing.TB, v *vm, bt bootTimes, what, metric string) {
	t.Helper()
	kernel := v.waitConsole(t, "Linux version", 0, time.Second)
	init := v.waitConsole(t, "Run /gokrazy/init as init process", kernel, time.Second)
	t.Logf("%s: STUN after %.1f s, DERP TLS after %.1f s (kernel at %.1f s, init at %.1f s)", what, bt.stun.Seconds(), bt.derp.Seconds(), kernel.Seconds(), init.Seconds())
	f.seconds(what+": power on → STUN answers", bt.stun, "≤ 15 s", metric+"-to-stun-s")
	f.seconds(what+": power on → DERP TLS serves the pinned certificate", bt.derp, "≤ 15 s", metric+"-to-derp-s")
	f.seconds(what+": of which firmware and boot loader (power on → kernel)", kernel, "", "")
	f.seconds(what+": of which kernel (→ /gokrazy/init)", init-kernel, "", "")
	f.seconds(what+": of which init → STUN answers", bt.stun-init, "", "")
}

// idleMemory waits for every service to run (tailscaled last) and a few
// seconds more, then reads the box's memory.
func (v *vm) idleMemory(t testing.TB) *boxMemory {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		m, err := v.memory(ctx)
		if err == nil && m.rss["/user/tailscaled"] > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("tailscaled not running within 2 minutes (%v, %v)", m, err)
		case <-time.After(time.Second):
		}
	}
	time.Sleep(5 * time.Second)
	m, err := v.memory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// memory records the box's memory figures.
func (f *figures) memory(what string, m *boxMemory, metric string) {
	target := ""
	if metric == "rss-idle" {
		target = "≤ 150 MiB"
	}
	f.mebibytes("RSS of the whole box "+what+" (init + every service)", m.rssOfBoxes, target, metric+"-MiB")
	for _, p := range []string{"/user/appliance", "/user/tailscaled", "init"} {
		f.mebibytes("  of which "+p+" "+what, m.rss[p], "", "")
	}
	f.mebibytes("memory in use "+what+" (MemTotal − MemAvailable, kernel included)", m.memUsed, "", "")
}

// withClients connects n DERP clients (real derphttp clients, as the map
// says) and records the memory with them connected, and how much of a
// 512 MiB Raspberry Pi Zero 2 W that leaves free.
func (f *figures) withClients(t testing.TB, v *vm, n int) {
	t.Helper()
	region, _, err := v.fetchMap(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := v.dialableRegion(t, region)
	start := time.Now()
	var clients []*relaytest.Client
	for i := 0; i < n; i++ {
		c, err := relaytest.TryConnect(t, r)
		if err != nil {
			t.Fatalf("DERP client %d of %d: %v", i+1, n, err)
		}
		clients = append(clients, c)
	}
	took := time.Since(start)
	// The last one is admitted once it gets the server's first frame.
	if v, err := relaytest.AwaitVerdict(clients[n-1], 30*time.Second); v != relaytest.Admitted {
		t.Fatalf("DERP client %d: %v (%v), want admitted", n, v, err)
	}
	time.Sleep(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := v.memory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d DERP clients connected in %.1f s; %v", n, took.Seconds(), m)
	what := fmt.Sprintf("with %d DERP clients", n)
	f.add("DERP clients connected", float64(n), "clients", "", "")
	f.memory(what, m, "rss-clients")
	free := 100 * (1 - float64(m.memUsed)/float64(boxMemoryMiB<<20))
	f.add(fmt.Sprintf("free of a 512 MiB Zero 2 W %s (1 − memory in use / 512 MiB)", what), free, "%", "≥ 50 %", "zero2w-free-%")
	for _, c := range clients {
		c.Close()
	}
}

// refuseBadUpdates checks that updates the box could not boot are
// refused before anything is written.
func (v *vm) refuseBadUpdates(t testing.TB, second *testBuild) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, bad := range []struct {
		name             string
		goarch, permUUID string
		want             string
	}{
		{"another architecture", "arm64", "", "this image is for arm64"},
		{"another disk", "amd64", strings.ToLower(disk.PartGUID("otherhost", disk.Perm).String()), "installed with another hostname"},
	} {
		img := updateImage(second)
		img.GOARCH, img.PermUUID = bad.goarch, bad.permUUID
		_, err := update.Push(ctx, img, update.Options{BaseURL: v.baseURL(), Client: v.client(20 * time.Second), Wait: time.Second})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("update to %s: got %v, want a refusal containing %q", bad.name, err, bad.want)
		}
	}
}

func updateImage(b *testBuild) update.Image {
	return update.Image{
		Timestamp: b.res.Timestamp,
		Root:      func() (io.ReadCloser, error) { return b.res.OpenRoot() },
		Boot:      b.res.WriteBoot,
		MBR:       b.res.MBRBootCode(),
		GOARCH:    b.res.GOARCH,
		PermUUID:  strings.ToLower(disk.PartGUID(b.res.Hostname, disk.Perm).String()),
	}
}

// update pushes the second build with board's update client, as `board
// update` does, and records the round trip until the new build serves
// STUN and DERP, and where the time went.
func (f *figures) update(t testing.TB, v *vm, second *testBuild) {
	t.Helper()
	start := v.since()
	// The relay's answers after the kexec are the new build's: the old
	// one stopped before the box answered the reboot request.
	type served struct {
		kexec time.Duration
		bt    bootTimes
		err   error
	}
	servedc := make(chan served, 1)
	go func() {
		var s served
		deadline := time.Now().Add(5 * time.Minute)
		for {
			at, ok := v.consoleAt("kexec_core: Starting new kernel", start)
			if ok {
				s.kexec = at
				break
			}
			if time.Now().After(deadline) {
				s.err = fmt.Errorf("no kexec on the console within 5 minutes")
				servedc <- s
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		s.bt, s.err = v.relayTimes(4 * time.Minute)
		servedc <- s
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tm, err := update.Push(ctx, updateImage(second), update.Options{BaseURL: v.baseURL(), Client: v.client(5 * time.Minute), Wait: 4 * time.Minute, Logf: t.Logf})
	if err != nil {
		t.Fatalf("update: %v\n%s", err, v.tail())
	}
	s := <-servedc
	if s.err != nil {
		t.Fatalf("after the update: %v\n%s", s.err, v.tail())
	}
	init := v.waitConsole(t, "Run /gokrazy/init as init process", s.kexec, time.Second)
	after := v.consoleSince(s.kexec)
	for _, want := range []string{
		"/PARTNROFF=2 ", // kernel command line after /update/switch
		"gokrazy build timestamp " + second.res.Timestamp, // the new init
		"inactiveRootPartition = 2",                       // gokrazy: running from partition 3
	} {
		if !strings.Contains(after, want) {
			t.Errorf("console after the update lacks %q", want)
		}
	}
	serving := max(s.bt.stun, s.bt.derp)
	rebooted := start + tm.Push + tm.Reboot
	t.Logf("update round trip: %.1f s to the new build serving (push %.1f s, reboot request %.1f s, gokrazy back %.1f s)",
		(serving - start).Seconds(), tm.Push.Seconds(), tm.Reboot.Seconds(), tm.Back.Seconds())
	f.seconds("board update round trip → the new build serves STUN and DERP TLS", serving-start, "≤ 30 s", "update-s")
	f.mebibytes("  root file system pushed", tm.RootSize, "", "update-root-MiB")
	f.seconds("  of which root upload", tm.Root-tm.RootSync, "", "")
	f.seconds("  of which root fsync and hash on the box", tm.RootSync, "", "")
	f.seconds("  of which boot file system, MBR, switch", tm.Push-tm.Root, "", "")
	f.seconds("  of which reboot request (services stop, /perm unmounted)", tm.Reboot, "", "")
	f.seconds("  of which reboot → new kernel (kexec)", s.kexec-rebooted, "", "")
	f.seconds("  of which kernel (→ /gokrazy/init)", init-s.kexec, "", "")
	f.seconds("  of which init → STUN and DERP TLS", serving-init, "", "")
	f.seconds("  gokrazy reported the new build after", tm.Total, "", "")
}

// consoleSince is the console text from since (since power-on) on.
func (v *vm) consoleSince(since time.Duration) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var b strings.Builder
	for _, l := range v.lines {
		if l.at >= since {
			b.WriteString(l.text)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
