// Package devbox runs a real `appliance -dev` process for tests: it builds
// the binary, starts it on loopback, reads the summary it prints, and stops
// it with SIGTERM as a person pressing Ctrl-C would, checking that it exits
// cleanly.
//
// It is a normal package so that the tests of several packages (appliance,
// webui) can share it, but only tests import it.
package devbox

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tailscale.com/tailcfg"
)

// Bounds of the waits on the process.
const (
	summaryTimeout = 60 * time.Second // start to the summary's last line
	stopTimeout    = 15 * time.Second // a signal to the exit
	outputDelay    = 5 * time.Second  // the exit to the end of its output (cmd.WaitDelay)
)

// Build compiles the appliance into a temporary directory and returns the
// binary's path.
func Build(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "appliance")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/homederp/homederp/appliance").CombinedOutput()
	if err != nil {
		t.Fatalf("go build appliance: %v\n%s", err, out)
	}
	return bin
}

// FreePort returns a port that was free a moment ago on loopback for both
// tcp and udp, so it serves as a DERP port (tcp) or a STUN port (udp).
func FreePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// Options say how to run the appliance. Zero values leave the flag out,
// so the appliance uses its configuration or its default.
type Options struct {
	StateDir  string // e.g. t.TempDir(); required
	DERPPort  int    // e.g. 41234; -derp-port, for a new dev configuration
	STUNPort  int    // e.g. 41235; -stun-port, for a new dev configuration
	WebUIAddr string // e.g. "127.0.0.1:0"; -webui-addr
}

// Box is a running `appliance -dev`.
type Box struct {
	Summary string // what it printed on start-up, up to the summary's last line

	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited
	err    error         // cmd.Wait's result, set before exited is closed
}

// summaryEnd starts the last line of the summary (appliance/app.go).
const summaryEnd = "derp.paths file"

// Start runs bin (from Build) with -dev and returns once it has printed
// its summary. Its stderr goes to t.Logf. It is killed when the test ends
// if it is still running.
func Start(t testing.TB, bin string, o Options) *Box {
	t.Helper()
	args := []string{"-dev", "-state-dir", o.StateDir}
	if o.DERPPort != 0 {
		args = append(args, "-derp-port", strconv.Itoa(o.DERPPort))
	}
	if o.STUNPort != 0 {
		args = append(args, "-stun-port", strconv.Itoa(o.STUNPort))
	}
	if o.WebUIAddr != "" {
		args = append(args, "-webui-addr", o.WebUIAddr)
	}
	cmd := exec.Command(bin, args...)
	// stdout goes through a pipe of our own rather than StdoutPipe, so
	// that one goroutine can Wait for the process while another still
	// reads: Wait returns only after all output has been copied.
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = LogWriter(t)
	cmd.WaitDelay = outputDelay
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &Box{cmd: cmd, exited: make(chan struct{})}
	go func() {
		b.err = cmd.Wait()
		pw.Close()
		close(b.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-b.exited:
		case <-time.After(stopTimeout):
			t.Errorf("appliance (pid %d) did not exit within %v of SIGKILL", cmd.Process.Pid, stopTimeout)
		}
	})

	type read struct {
		summary  string
		complete bool // the summary's last line was seen
	}
	reads := make(chan read, 1)
	go func() {
		var s strings.Builder
		sc := bufio.NewScanner(pr)
		complete := false
		for !complete && sc.Scan() {
			s.WriteString(sc.Text() + "\n")
			complete = strings.HasPrefix(sc.Text(), summaryEnd)
		}
		reads <- read{s.String(), complete}
		io.Copy(io.Discard, pr) // keep the process from blocking on a full pipe
	}()
	select {
	case r := <-reads:
		if !r.complete {
			exit := "still running"
			select {
			case <-b.exited:
				exit = fmt.Sprintf("exit: %v", b.err)
			case <-time.After(stopTimeout):
			}
			t.Fatalf("appliance -dev ended its output before its summary was complete (%s):\n%s", exit, r.summary)
		}
		b.Summary = r.summary
		return b
	case <-time.After(summaryTimeout):
		t.Fatalf("appliance -dev printed no summary within %v", summaryTimeout)
	}
	return nil
}

// webUILine is the summary's web UI line (appliance/app.go).
var webUILine = regexp.MustCompile(`web UI:\s+(http://127\.0\.0\.1:\d+/)\s+\(user gokrazy, password (\S+)\)`)

// WebUI returns the web UI's address (e.g. "http://127.0.0.1:41236/") and
// password as the summary states them; ok is false if it does not.
func (b *Box) WebUI() (url, password string, ok bool) {
	m := webUILine.FindStringSubmatch(b.Summary)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// Pid is the appliance's process ID, e.g. for reading /proc/<pid>.
func (b *Box) Pid() int { return b.cmd.Process.Pid }

// Stop sends SIGTERM, as Ctrl-C in a terminal would, and checks that the
// appliance exits cleanly within a bound.
func (b *Box) Stop(t testing.TB) {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
		if b.err != nil {
			t.Errorf("appliance after SIGTERM: %v, want a clean exit", b.err)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("appliance did not stop within %v of SIGTERM", stopTimeout)
	}
}

// LogWriter returns a writer that logs each write to t.Logf, marked as the
// appliance's.
func LogWriter(t testing.TB) io.Writer { return logWriter{t} }

type logWriter struct{ t testing.TB }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Logf("appliance: %s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// ReadMap reads the DERP map the appliance wrote to stateDir.
func ReadMap(t testing.TB, stateDir string) *tailcfg.DERPMap {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "derpmap.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m tailcfg.DERPMap
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("derpmap.json: %v", err)
	}
	return &m
}
