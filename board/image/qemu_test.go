package image

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/internal/testimage"
	"github.com/homederp/homederp/board/internal/toolcheck"
	"github.com/homederp/homederp/internal/testenv"
)

// TestQEMU boots the amd64 image (UEFI: OVMF → systemd-boot → kernel),
// checks STUN, DERP with the pinned certificate and the web UI, updates
// the running VM with board's update client and checks it came back on
// the other root partition with the new build and with /perm intact, then
// powers it on again with its clock unset. It is the short form of
// BenchmarkBox (10 DERP clients instead of 100): it takes every figure
// and writes them to box-figures.json in the test output, and fails only
// when one cannot be taken, never because the machine is slow.
func TestQEMU(t *testing.T) {
	f := runBox(t, boxRun{clients: 10})
	t.Logf("box figures (short form; scripts/bench-box.sh takes the full ones):\n%s", f.table())
	if err := writeJSON(filepath.Join(outputDir(t), "box-figures.json"), benchReport{
		Date: time.Now().UTC().Format(time.RFC3339), Machine: hostMachine(), Figures: f.list,
	}); err != nil {
		t.Error(err)
	}
}

// webUIExpected reports whether the appliance links homederp's web UI.
func webUIExpected(t testing.TB) bool {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./appliance")
	cmd.Dir = moduleDir(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./appliance: %v", err)
	}
	return strings.Contains(string(out), "github.com/homederp/homederp/webui\n")
}

// checkWebUI requires the web UI to answer on port 80 once the appliance
// has one.
func (v *vm) checkWebUI(t testing.TB) {
	t.Helper()
	if !webUIExpected(t) {
		t.Logf("the appliance does not link github.com/homederp/homederp/webui yet: not checking port 80")
		return
	}
	client := v.client(5 * time.Second)
	var last error
	for i := 0; i < 60; i++ {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", webUIPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				t.Logf("web UI answers on port 80: %s", resp.Status)
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		time.Sleep(time.Second)
	}
	t.Errorf("web UI: no answer on port 80 within a minute: %v", last)
}

// checkDiskAfterUpdate reads the VM's disk after it powered off: the boot
// partition now names partition 3, root B holds the new build, and /perm
// is a clean ext4 still holding the appliance's state.
func checkDiskAfterUpdate(t testing.TB, img string, second *testBuild) {
	t.Helper()
	l, _ := disk.NewLayout(testImageSize)
	cmd := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", img, l.Part(disk.Boot).Offset()), "::/cmdline.txt")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	line, err := cmd.Output()
	if err != nil {
		t.Fatalf("mtype cmdline.txt: %v", err)
	}
	if !bytes.Contains(line, []byte("/PARTNROFF=2 ")) || !bytes.HasSuffix(line, bytes.Repeat([]byte(" "), 60)) {
		t.Errorf("cmdline.txt after the update: %q, want PARTNROFF=2 and the padding kept", line)
	}
	rootB := testimage.Extract(t, img, l.Part(disk.RootB).Offset(), second.res.RootSize)
	if hashFile(t, rootB) != hashFile(t, second.res.RootFile) {
		t.Errorf("root B does not hold the new build's root file system")
	}
	perm := testimage.Extract(t, img, l.Part(disk.Perm).Offset(), l.Part(disk.Perm).Size())
	if out, err := exec.Command("e2fsck", "-fn", perm).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn /perm after use: %v\n%s", err, out)
	}
	out := toolcheck.Run(t, "debugfs", []string{"-R", "ls -l /homederp", perm}, "derper.key", "certs")
	t.Logf("/perm/homederp after the update:\n%s", out)
}

// TestQEMUArm64 boots the generic arm64 UEFI image on qemu's virt
// machine, then powers it on again as a Raspberry Pi comes back from a
// power cut: see runArm64.
func TestQEMUArm64(t *testing.T) {
	f := runArm64(t)
	t.Logf("arm64 figures:\n%s", f.table())
}

// noClock is the RTC of a board without a real-time clock: the virt
// machine's PL031 counts from the epoch as a Pi's clock does at power on.
// The VM's network has no NTP server.
const noClock = "1970-01-01"

// runArm64 boots the generic arm64 UEFI image (AAVMF → systemd-boot for
// aa64 → kernel.arm64) on qemu's virt machine and checks STUN, the pinned
// DERP certificate and gokrazy's status. Then it pulls the plug and powers
// the box on with its clock at the epoch, as a Raspberry Pi (which has no
// real-time clock) comes back from a power cut with no Internet: gokrazy's
// ntp has no time saved at a shutdown to start from, and no server to
// ask. The relay must serve the stored, pinned certificate anyway.
func runArm64(t testing.TB) *figures {
	testenv.NeedRoot(t) // the network namespace
	testenv.NeedCommand(t, "ip")
	b := buildBoard(t, "arm64", firstTimestamp)
	img := testimage.Extract(t, b.image, 0, testImageSize)
	console := filepath.Join(outputDir(t), "board-qemu-arm64-console.log")
	os.Remove(console)
	f := &figures{}
	v := startVM(t, "arm64", img, console, vmOptions{MemoryMiB: boxMemoryMiB})
	bt := v.waitRelay(t, 4*time.Minute)
	f.boot(t, v, bt, "arm64 first power-on", "arm64-boot")
	st := v.status(t)
	if st.BuildTimestamp != b.res.Timestamp || !strings.Contains(st.Kernel, "(aarch64)") {
		t.Errorf("gokrazy status: got build %s kernel %q, want %s on aarch64", st.BuildTimestamp, st.Kernel, b.res.Timestamp)
	}
	pin, key := v.derpCheck(t)
	t.Logf("DERP: certificate pinned by the map (%s), server key %s", pin, key)

	v.kill()
	v = startVM(t, "arm64", img, console, vmOptions{MemoryMiB: boxMemoryMiB, RTC: noClock, NS: v.ns})
	defer v.kill()
	// A relay that waits for the clock never answers here: that fails
	// the test but keeps the figures above.
	bt, err := v.relayTimes(2 * time.Minute)
	if err != nil {
		t.Errorf("clock unset: %v\n%s", err, v.tail())
		return f
	}
	f.boot(t, v, bt, "arm64 power on with the clock unset (a Pi after a power cut, no Internet)", "noclock")
	if err := v.logContains("/user/appliance", "the clock is not set", 30*time.Second); err != nil {
		t.Errorf("clock unset: %v", err)
	}
	if pin2, key2 := v.derpCheck(t); pin2 != pin || key2 != key {
		t.Errorf("clock unset: pin %s key %s, want the stored %s, %s", pin2, key2, pin, key)
	}
	return f
}
