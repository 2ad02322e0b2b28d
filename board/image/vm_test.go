package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/netnstest"
	"github.com/homederp/homederp/internal/testenv"
)

// vm is a board image booted in qemu (TCG) with UEFI firmware and
// user-mode networking, its ports forwarded to 127.0.0.1.
//
// qemu runs in a network namespace of its own that has nothing but a
// loopback interface, so the guest (ntp, tailscaled, dhcp's DNS) reaches
// no address outside the test: libslirp's restrict=on would do the same,
// but it also drops the guest's UDP replies through a forward, which STUN
// needs. The forwarded ports are on the namespace's 127.0.0.1; the test
// reaches them with sockets opened inside the namespace.
//
// The serial console is read line by line as qemu writes it, and each
// line is stamped with the time since power-on: that timeline says where
// a boot or an update spends its time.
type vm struct {
	cmd      *exec.Cmd
	done     chan error
	console  string // the console log file, each line after the seconds since power-on
	ns       *netnstest.NS
	started  time.Time // power on: qemu started
	password string
	acme     *acmeTrust // a CA whose certificate the DERP port may serve in place of the pinned one; nil: none

	mu    sync.Mutex
	lines []consoleLine
}

// consoleLine is one line of the serial console and when it arrived.
type consoleLine struct {
	at   time.Duration // since power-on
	text string
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

// vmOptions say how to power on a VM.
type vmOptions struct {
	// MemoryMiB is the guest's RAM, e.g. 512 for a Raspberry Pi Zero 2 W;
	// 0 means 1024.
	MemoryMiB int
	// RTC is qemu's -rtc base, e.g. "1970-01-02" for a board without a
	// real-time clock; "" means the host's UTC time.
	RTC string
	// NS is the network namespace to run in; nil makes a new one. A
	// power-cycled box keeps its namespace.
	NS *netnstest.NS
	// ACME, if set, is the CA of a box in certificate mode acme-dns,
	// whose map drops the pin once the CA's certificate serves.
	ACME *acmeTrust
}

// startVM powers on goarch's machine with the disk image img, logging
// the serial console to console.
func startVM(t testing.TB, goarch, img, console string, o vmOptions) *vm {
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
	if o.NS == nil {
		o.NS = netnstest.New(t, "hd-board-vm")
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 1024
	}
	rtc := "base=utc"
	if o.RTC != "" {
		rtc = "base=" + o.RTC
	}
	v := &vm{
		console:  console,
		ns:       o.NS,
		done:     make(chan error, 1),
		password: testPassword,
		acme:     o.ACME,
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
		// engineers' work.
		"-smp", "1", "-m", fmt.Sprint(o.MemoryMiB),
		"-display", "none", "-monitor", "none",
		"-serial", "stdio",
		"-rtc", rtc,
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
	logFile, err := os.OpenFile(console, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0644)
	if err != nil {
		t.Fatal(err)
	}
	v.cmd = v.ns.Command(context.Background(), qemu, args...)
	stdout, err := v.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	v.cmd.Stderr = &stderr
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting qemu: %v", err)
	}
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		defer logFile.Close()
		v.readConsole(stdout, logFile)
	}()
	go func() {
		<-consoleDone // Wait must not close the pipe before it is read
		err := v.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, stderr.String())
		}
		v.done <- err
	}()
	t.Cleanup(func() { v.kill() })
	t.Logf("%s started (pid %d, %d MiB, rtc %s) in network namespace %s; serial console: %s", m.qemu, v.cmd.Process.Pid, o.MemoryMiB, rtc, v.ns.Name, console)
	return v
}

// readConsole stamps and records each console line and copies it to w,
// each line prefixed with the seconds since power-on.
func (v *vm) readConsole(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		at := time.Since(v.started)
		text := strings.TrimRight(sc.Text(), "\r")
		v.mu.Lock()
		v.lines = append(v.lines, consoleLine{at, text})
		v.mu.Unlock()
		fmt.Fprintf(w, "%8.3f %s\n", at.Seconds(), text)
	}
}

// consoleAt returns when the first console line containing s arrived at
// or after since (both since power-on).
func (v *vm) consoleAt(s string, since time.Duration) (time.Duration, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, l := range v.lines {
		if l.at >= since && strings.Contains(l.text, s) {
			return l.at, true
		}
	}
	return 0, false
}

// waitConsole waits up to d for a console line containing s at or after
// since.
func (v *vm) waitConsole(t testing.TB, s string, since, d time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if at, ok := v.consoleAt(s, since); ok {
			return at
		}
		select {
		case err := <-v.done:
			v.done <- err
			t.Fatalf("qemu exited while waiting for %q on the console: %v\n%s", s, err, v.tail())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("no %q on the console within %v\n%s", s, d, v.tail())
	return 0
}

// since is the time since power-on.
func (v *vm) since() time.Duration { return time.Since(v.started) }

// kill pulls the plug.
func (v *vm) kill() {
	select {
	case err := <-v.done:
		v.done <- err
		return
	default:
	}
	v.cmd.Process.Kill()
	select {
	case err := <-v.done:
		v.done <- err
	case <-time.After(10 * time.Second):
	}
}

// poweroff asks gokrazy to power the box off and waits for qemu to exit.
func (v *vm) poweroff(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, v.baseURL()+"poweroff", nil)
	if resp, err := v.client(20 * time.Second).Do(req); err != nil {
		t.Logf("poweroff request: %v", err)
	} else {
		resp.Body.Close()
	}
	select {
	case err := <-v.done:
		v.done <- err
	case <-time.After(3 * time.Minute):
		t.Fatalf("the VM did not power off within 3 minutes\n%s", v.tail())
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
			// pin by fetchMap, not against CAs.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
	}
}

// proxy forwards connections to a host loopback port into the namespace's
// port, so a derphttp client (which dials on its own) reaches the box.
func (v *vm) proxy(t testing.TB, port int) int {
	t.Helper()
	return proxyInto(t, v.ns, port)
}

// proxyInto forwards connections to a new host loopback port into the
// namespace's 127.0.0.1:port and returns the host port.
func proxyInto(t testing.TB, ns *netnstest.NS, port int) int {
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
				up, err := ns.Dialer().DialContext(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", port))
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

func (v *vm) tail() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var b strings.Builder
	for _, l := range v.lines[max(0, len(v.lines)-40):] {
		fmt.Fprintf(&b, "%7.2fs %s\n", l.at.Seconds(), l.text)
	}
	return b.String()
}
