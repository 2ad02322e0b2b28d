package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/internal/testimage"
	"github.com/homederp/homederp/board/internal/toolcheck"
	"github.com/homederp/homederp/board/update"
	"github.com/homederp/homederp/internal/netnstest"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
)

// vm is the amd64 image booted in qemu (TCG) with OVMF and user-mode
// networking, its ports forwarded to 127.0.0.1.
//
// qemu runs in a network namespace of its own that has nothing but a
// loopback interface, so the guest (ntp, tailscaled, dhcp's DNS) reaches
// no address outside the test: libslirp's restrict=on would do the same,
// but it also drops the guest's UDP replies through a forward, which STUN
// needs. The forwarded ports are on the namespace's 127.0.0.1; the test
// reaches them with sockets opened inside the namespace.
type vm struct {
	cmd      *exec.Cmd
	done     chan error
	console  string
	ns       *netnstest.NS
	started  time.Time
	password string
}

// The guest's ports, forwarded to the same ports on the namespace's
// loopback.
const (
	gokrazyPort = 8080  // gokrazy's web interface and update API
	derpPort    = 12345 // DERP over TLS
	stunPort    = 3478  // STUN (udp)
	webUIPort   = 80    // homederp's web UI
)

// machines are the qemu machines the images boot on, with their UEFI
// firmware (code, and variables to copy; the first existing pair wins).
var machines = map[string]struct {
	qemu     string
	args     []string
	firmware [][2]string
	pkg      string
}{
	"amd64": {
		qemu: "qemu-system-x86_64",
		args: []string{"-machine", "q35"},
		firmware: [][2]string{
			{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
			{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
		},
		pkg: "ovmf",
	},
	"arm64": {
		qemu:     "qemu-system-aarch64",
		args:     []string{"-machine", "virt", "-cpu", "cortex-a72"},
		firmware: [][2]string{{"/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd"}},
		pkg:      "qemu-efi-aarch64",
	},
}

func startVM(t *testing.T, goarch, img, console string) *vm {
	t.Helper()
	m := machines[goarch]
	qemu := testenv.NeedCommand(t, m.qemu)
	var code, vars string
	for _, c := range m.firmware {
		if fileExists(c[0]) && fileExists(c[1]) {
			code, vars = c[0], c[1]
			break
		}
	}
	testenv.Need(t, code != "", "UEFI firmware for "+goarch+" (Debian package "+m.pkg+")")
	v := &vm{
		console:  console,
		ns:       netnstest.New(t, "hd-board-vm"),
		done:     make(chan error, 1),
		password: testPassword,
	}
	varsCopy := filepath.Join(t.TempDir(), "UEFI_VARS.fd")
	b, err := os.ReadFile(vars)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(varsCopy, b, 0644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-accel", "tcg"}, m.args...)
	args = append(args,
		"-nodefaults",
		// One CPU leaves the second core to the test and the other
		// engineers' work; more memory than gokrazy needs.
		"-smp", "1", "-m", "1024",
		"-display", "none", "-monitor", "none",
		"-serial", "file:"+console,
		"-rtc", "base=utc",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
		"-drive", "if=pflash,format=raw,unit=1,file="+varsCopy,
		"-drive", "if=none,id=disk,format=raw,file="+img,
		"-device", "virtio-blk-pci,drive=disk",
		"-netdev", fmt.Sprintf("user,id=net0,"+
			"hostfwd=tcp:127.0.0.1:%d-:%[1]d,hostfwd=tcp:127.0.0.1:%d-:%[2]d,"+
			"hostfwd=udp:127.0.0.1:%d-:%[3]d,hostfwd=tcp:127.0.0.1:%d-:%[4]d",
			gokrazyPort, derpPort, stunPort, webUIPort),
		"-device", "virtio-net-pci,netdev=net0",
	)
	v.cmd = v.ns.Command(context.Background(), qemu, args...)
	var stderr bytes.Buffer
	v.cmd.Stdout, v.cmd.Stderr = &stderr, &stderr
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("starting qemu: %v", err)
	}
	go func() {
		err := v.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, stderr.String())
		}
		v.done <- err
	}()
	t.Cleanup(func() { v.kill() })
	t.Logf("%s started (pid %d) in network namespace %s; serial console: %s", m.qemu, v.cmd.Process.Pid, v.ns.Name, console)
	return v
}

func (v *vm) kill() {
	select {
	case <-v.done:
		return
	default:
	}
	v.cmd.Process.Kill()
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
	}
}

func (v *vm) baseURL() string {
	u := &url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", gokrazyPort), Path: "/", User: url.UserPassword("gokrazy", v.password)}
	return u.String()
}

// client is an HTTP client whose connections open in the VM's namespace.
func (v *vm) client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: v.ns.Dialer().DialContext,
			// No connection outlives a reboot of the box: a pooled one
			// would be dead after it.
			DisableKeepAlives: true,
			// The DERP port's certificate is checked against the map's
			// pin by derpCheck, not against CAs.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
	}
}

// proxy forwards connections to a host loopback port into the namespace's
// port, so a derphttp client (which dials on its own) reaches the box.
func (v *vm) proxy(t *testing.T, port int) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				up, err := v.ns.Dialer().DialContext(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", port))
				cancel()
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// stunOnce sends one STUN binding request and waits up to a second.
func (v *vm) stunOnce() (mapped string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := v.ns.Dialer().DialContext(ctx, "udp4", fmt.Sprintf("127.0.0.1:%d", stunPort))
	if err != nil {
		return "", err
	}
	defer c.Close()
	tx := stun.NewTxID()
	if _, err := c.Write(stun.Request(tx)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	got, addr, err := stun.ParseResponse(buf[:n])
	if err != nil {
		return "", err
	}
	if got != tx {
		return "", fmt.Errorf("STUN answer for another transaction")
	}
	return addr.String(), nil
}

// waitSTUN polls STUN once a second until it answers, for at most d.
func (v *vm) waitSTUN(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-v.done:
			t.Fatalf("qemu exited while waiting for STUN: %v\n%s", err, v.tail())
		default:
		}
		start := time.Now()
		addr, err := v.stunOnce()
		if err == nil {
			t.Logf("STUN answers: we are %s as the box sees us", addr)
			return time.Since(v.started)
		}
		last = err
		if d := time.Second - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
	t.Fatalf("no STUN answer within %v: %v\n%s", d, last, v.tail())
	return 0
}

func (v *vm) tail() string {
	b, _ := os.ReadFile(v.console)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// derpCheck fetches the DERP map the box serves, checks that the DERP
// port's certificate is the one the map pins, and relays a packet between
// two real derphttp clients dialing as the map says (with the address
// replaced by the forwarded port). It returns the pin and the server's
// DERP key.
func (v *vm) derpCheck(t *testing.T) (pin, serverKey string) {
	t.Helper()
	resp, err := v.client(20 * time.Second).Get(fmt.Sprintf("https://127.0.0.1:%d/derpmap.json", derpPort))
	if err != nil {
		t.Fatalf("GET /derpmap.json: %v", err)
	}
	defer resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatal("DERP port: no TLS")
	}
	var m tailcfg.DERPMap
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decoding /derpmap.json: %v", err)
	}
	if len(m.Regions) != 1 {
		t.Fatalf("/derpmap.json: %d regions, want 1", len(m.Regions))
	}
	var region *tailcfg.DERPRegion
	for _, r := range m.Regions {
		region = r
	}
	if len(region.Nodes) == 0 {
		t.Fatal("/derpmap.json: no nodes")
	}
	node := *region.Nodes[0]
	want := fmt.Sprintf("sha256-raw:%x", sha256.Sum256(resp.TLS.PeerCertificates[0].Raw))
	if node.CertName != want {
		t.Fatalf("the map pins %q, the DERP port serves %q", node.CertName, want)
	}
	if node.DERPPort != 12345 || node.STUNPort != 3478 {
		t.Errorf("map ports: DERP %d STUN %d, want 12345 and 3478", node.DERPPort, node.STUNPort)
	}
	node.IPv4, node.DERPPort = "127.0.0.1", v.proxy(t, derpPort)
	r := *region
	r.Nodes = []*tailcfg.DERPNode{&node}
	a := relaytest.Connect(t, &r)
	b := relaytest.Connect(t, &r)
	relaytest.Exchange(t, a, b)
	return node.CertName, a.ServerPublicKey().String()
}

// webUIExpected reports whether the appliance links homederp's web UI.
func webUIExpected(t *testing.T) bool {
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
func (v *vm) checkWebUI(t *testing.T) {
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

// TestQEMU boots the amd64 image (UEFI: OVMF → systemd-boot → kernel),
// checks STUN, DERP with the pinned certificate and the web UI, then
// updates the running VM with board's update client and checks it came
// back on the other root partition with the new build and with /perm
// intact.
func TestQEMU(t *testing.T) {
	testenv.NeedRoot(t) // the network namespace
	testenv.NeedCommand(t, "ip")
	testenv.NeedCommand(t, "e2fsck")
	testenv.NeedCommand(t, "debugfs")
	testenv.NeedCommand(t, "mtype")
	first := buildBoard(t, "amd64", firstTimestamp)
	out := outputDir(t)

	// The VM writes its disk; boot a copy.
	img := testimage.Extract(t, first.image, 0, testImageSize)
	console := filepath.Join(out, "board-qemu-console.log")
	v := startVM(t, "amd64", img, console)
	bootToSTUN := v.waitSTUN(t, 4*time.Minute)
	t.Logf("boot to STUN: %.1f s", bootToSTUN.Seconds())

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	client := v.client(20 * time.Second)
	st, err := update.GetStatus(ctx, v.baseURL(), client)
	if err != nil {
		t.Fatalf("gokrazy status on port 8080: %v", err)
	}
	if st.BuildTimestamp != first.res.Timestamp || st.Hostname != "homederp" || st.PermDev != "/dev/vda4" {
		t.Errorf("gokrazy status: got %+v, want build %s on homederp with /perm on /dev/vda4", st, first.res.Timestamp)
	}
	pin, key := v.derpCheck(t)
	t.Logf("DERP: certificate pinned by the map (%s), server key %s", pin, key)
	v.checkWebUI(t)

	// Update the running box to a new build. First, updates it could not
	// boot are refused before anything is written.
	second := buildBoard(t, "amd64", secondTimestamp)
	for _, bad := range []struct {
		name             string
		goarch, permUUID string
		want             string
	}{
		{"another architecture", "arm64", "", "this image is for arm64"},
		{"another disk", "amd64", strings.ToLower(disk.PartGUID("otherhost", disk.Perm).String()), "installed with another hostname"},
	} {
		_, err := update.Push(ctx, update.Image{
			Timestamp: second.res.Timestamp,
			Root:      func() (io.ReadCloser, error) { return second.res.OpenRoot() },
			Boot:      second.res.WriteBoot,
			MBR:       second.res.MBRBootCode(),
			GOARCH:    bad.goarch,
			PermUUID:  bad.permUUID,
		}, update.Options{BaseURL: v.baseURL(), Client: client, Wait: time.Second})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("update to %s: got %v, want a refusal containing %q", bad.name, err, bad.want)
		}
	}
	tm, err := update.Push(ctx, update.Image{
		Timestamp: second.res.Timestamp,
		Root:      func() (io.ReadCloser, error) { return second.res.OpenRoot() },
		Boot:      second.res.WriteBoot,
		MBR:       second.res.MBRBootCode(),
		GOARCH:    second.res.GOARCH,
		PermUUID:  strings.ToLower(disk.PartGUID(second.res.Hostname, disk.Perm).String()),
	}, update.Options{BaseURL: v.baseURL(), Client: v.client(5 * time.Minute), Wait: 4 * time.Minute, Logf: t.Logf})
	if err != nil {
		t.Fatalf("update: %v\n%s", err, v.tail())
	}
	t.Logf("update round trip: %.1f s (push %.1f s, reboot request %.1f s, back %.1f s)",
		tm.Total.Seconds(), tm.Push.Seconds(), tm.Reboot.Seconds(), tm.Back.Seconds())

	// Rebooted (kexec) into root B with the new build.
	log, err := os.ReadFile(console)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(log, []byte("kexec_core: Starting new kernel"))
	if i < 0 {
		t.Fatalf("console: no kexec reboot")
	}
	after := string(log[i:])
	for _, want := range []string{
		"/PARTNROFF=2 ", // kernel command line after /update/switch
		"gokrazy build timestamp " + second.res.Timestamp, // the new init
		"inactiveRootPartition = 2",                       // gokrazy: running from partition 3
	} {
		if !strings.Contains(after, want) {
			t.Errorf("console after the update lacks %q", want)
		}
	}
	if _, err := v.stunOnce(); err != nil {
		// The appliance may still be starting: wait for it as after boot.
		v.waitSTUN(t, time.Minute)
	}
	pin2, key2 := v.derpCheck(t)
	if pin2 != pin || key2 != key {
		t.Errorf("after the update: pin %s key %s, want the same as before (%s, %s): /perm/homederp did not survive", pin2, key2, pin, key)
	}

	// Power off cleanly, then read the disk.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, v.baseURL()+"poweroff", nil)
	if resp, err := client.Do(req); err != nil {
		t.Logf("poweroff request: %v", err)
	} else {
		resp.Body.Close()
	}
	select {
	case <-v.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the VM did not power off within 3 minutes\n%s", v.tail())
	}
	checkDiskAfterUpdate(t, img, second)

	timings := fmt.Sprintf("boot to STUN (qemu TCG, 1 vCPU, amd64 UEFI): %.1f s\nupdate round trip (build %s -> %s, %d MiB root): %.1f s (push %.1f s, reboot request %.1f s, back %.1f s)\n",
		bootToSTUN.Seconds(), first.res.Timestamp, second.res.Timestamp, tm.RootSize>>20, tm.Total.Seconds(), tm.Push.Seconds(), tm.Reboot.Seconds(), tm.Back.Seconds())
	os.WriteFile(filepath.Join(out, "board-qemu-timings.txt"), []byte(timings), 0644)
}

// checkDiskAfterUpdate reads the VM's disk after it powered off: the boot
// partition now names partition 3, root B holds the new build, and /perm
// is a clean ext4 still holding the appliance's state.
func checkDiskAfterUpdate(t *testing.T, img string, second *testBuild) {
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

// TestQEMUArm64 boots the generic arm64 UEFI image (AAVMF → systemd-boot
// for aa64 → kernel.arm64) on qemu's virt machine and checks STUN, the
// pinned DERP certificate and gokrazy's status.
func TestQEMUArm64(t *testing.T) {
	testenv.NeedRoot(t) // the network namespace
	testenv.NeedCommand(t, "ip")
	b := buildBoard(t, "arm64", firstTimestamp)
	img := testimage.Extract(t, b.image, 0, testImageSize)
	v := startVM(t, "arm64", img, filepath.Join(outputDir(t), "board-qemu-arm64-console.log"))
	bootToSTUN := v.waitSTUN(t, 4*time.Minute)
	t.Logf("arm64 boot to STUN: %.1f s", bootToSTUN.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := update.GetStatus(ctx, v.baseURL(), v.client(20*time.Second))
	if err != nil {
		t.Fatalf("gokrazy status: %v", err)
	}
	if st.BuildTimestamp != b.res.Timestamp || !strings.Contains(st.Kernel, "(aarch64)") {
		t.Errorf("gokrazy status: got build %s kernel %q, want %s on aarch64", st.BuildTimestamp, st.Kernel, b.res.Timestamp)
	}
	pin, key := v.derpCheck(t)
	t.Logf("DERP: certificate pinned by the map (%s), server key %s", pin, key)
	os.WriteFile(filepath.Join(outputDir(t), "board-qemu-arm64-timings.txt"),
		[]byte(fmt.Sprintf("boot to STUN (qemu TCG virt, 1 vCPU, arm64 UEFI): %.1f s\n", bootToSTUN.Seconds())), 0644)
}
