package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/tailcfg"
)

// freePort returns a port that was free a moment ago on loopback, for
// both tcp and udp.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", itoa(port))); err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func itoa(i int) string { return strconv.Itoa(i) }

func buildAppliance(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "appliance")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runDev starts `appliance -dev` and returns once it printed its summary.
func runDev(t *testing.T, bin, stateDir string, derpPort, stunPort int) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "-dev", "-state-dir", stateDir, "-derp-port", itoa(derpPort), "-stun-port", itoa(stunPort))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	summary := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "derp.paths file") {
				summary <- b.String()
				discard(sc)
				return
			}
		}
		summary <- b.String()
	}()
	select {
	case s := <-summary:
		return cmd, s
	case <-time.After(60 * time.Second):
		t.Fatal("no summary within 60s")
	}
	return nil, ""
}

func discard(sc *bufio.Scanner) {
	for sc.Scan() {
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func stopCleanly(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("appliance after SIGTERM: %v, want a clean exit", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("appliance did not stop within 15s of SIGTERM")
	}
}

func readMap(t *testing.T, stateDir string) *tailcfg.DERPMap {
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

func TestDevRunTwice(t *testing.T) {
	bin := buildAppliance(t)
	stateDir := t.TempDir()
	derpPort, stunPort := freePort(t), freePort(t)

	cmd, summary := runDev(t, bin, stateDir, derpPort, stunPort)
	for _, want := range []string{
		"https://localhost:" + itoa(derpPort) + "/derp",
		"udp 127.0.0.1:" + itoa(stunPort),
		filepath.Join(stateDir, "derpmap.json"),
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	m1 := readMap(t, stateDir)
	region := m1.Regions[900]
	if region == nil || len(region.Nodes) != 1 {
		t.Fatalf("map: got %+v, want region 900 with one node", m1)
	}
	if n := region.Nodes[0]; n.DERPPort != derpPort || n.STUNPort != stunPort || !strings.HasPrefix(n.CertName, "sha256-raw:") || n.IPv4 != "" {
		t.Errorf("node: got %+v", n)
	}

	// A real client connects with nothing but the written map.
	relaytest.Exchange(t, relaytest.Connect(t, region), relaytest.Connect(t, region))
	key1, err := os.ReadFile(filepath.Join(stateDir, "derper.key"))
	if err != nil {
		t.Fatal(err)
	}
	stopCleanly(t, cmd)

	cmd, _ = runDev(t, bin, stateDir, derpPort, stunPort)
	m2 := readMap(t, stateDir)
	if got, want := m2.Regions[900].Nodes[0].CertName, region.Nodes[0].CertName; got != want {
		t.Errorf("second run: CertName %q, want the first run's %q", got, want)
	}
	key2, _ := os.ReadFile(filepath.Join(stateDir, "derper.key"))
	if string(key1) != string(key2) {
		t.Error("second run made a new DERP key")
	}
	stopCleanly(t, cmd)
}
