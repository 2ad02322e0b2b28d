package relay

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay/relaytest"
	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/tailcfg"
)

var testMeshKey = strings.Repeat("5a", 32)

func (tr *testRelay) port() int { return tr.srv.DERPAddr().(*net.TCPAddr).Port }

// meshPeer is how another relay lists tr: pinned, by host:port.
func (tr *testRelay) meshPeer() MeshPeer {
	return MeshPeer{Host: "localhost:" + strconv.Itoa(tr.port()), CertName: tr.region.Nodes[0].CertName}
}

func meshStatus(tr *testRelay, peer string) (MeshStatus, bool) {
	for _, m := range tr.srv.Status().Mesh {
		if m.Peer == peer {
			return m, true
		}
	}
	return MeshStatus{}, false
}

func awaitMeshUp(t *testing.T, tr *testRelay, peer string) {
	t.Helper()
	testwait.For(t, 30*time.Second, "mesh link to "+peer, func() error {
		m, ok := meshStatus(tr, peer)
		if !ok {
			return errString("no such mesh peer")
		}
		if !m.Connected {
			return fmt.Errorf("not connected: %s", m.Error)
		}
		return nil
	})
}

// TestMeshTwoBoxes meshes two homederp relays with self-signed, pinned
// certificates, each listing both (itself included, as one shared list).
func TestMeshTwoBoxes(t *testing.T) {
	r1 := startRelay(t, t.TempDir())
	r2 := startRelay(t, t.TempDir())
	peers := []MeshPeer{r1.meshPeer(), r2.meshPeer()}
	for _, r := range []*testRelay{r1, r2} {
		if err := r.srv.Apply(Policy{MeshKey: testMeshKey, MeshWith: peers}); err != nil {
			t.Fatal(err)
		}
	}
	awaitMeshUp(t, r1, r2.meshPeer().String())
	awaitMeshUp(t, r2, r1.meshPeer().String())

	a := relaytest.Connect(t, r1.region)
	b := relaytest.Connect(t, r2.region)
	relaytest.Exchange(t, a, b)

	st := r1.srv.Status()
	if self, _ := meshStatus(r1, r1.meshPeer().String()); !self.Self || self.Connected {
		t.Errorf("r1's own entry: got %+v, want Self and not connected", self)
	}
	if st.MeshPeers != 1 || st.ClientsConnected != 1 {
		t.Errorf("r1 Status: MeshPeers %d, ClientsConnected %d; want 1 and 1 (the mesh peer's connection is not a client)", st.MeshPeers, st.ClientsConnected)
	}
	if m, _ := meshStatus(r1, r2.meshPeer().String()); m.Clients < 1 {
		t.Errorf("r1's link to r2 forwards to %d clients, want b at least", m.Clients)
	}

	t.Run("removing the peer withdraws its clients", func(t *testing.T) {
		if err := r1.srv.Apply(Policy{MeshKey: testMeshKey}); err != nil {
			t.Fatal(err)
		}
		if got := r1.srv.Status().Mesh; len(got) != 0 {
			t.Errorf("Mesh after removing the peers: got %+v, want none", got)
		}
		if got := intVar(r1.srv.gen.Load().vars.Get("gauge_clients_remote")); got != 0 {
			t.Errorf("r1 still forwards to %d remote clients", got)
		}
	})
}

func TestMeshPinMismatch(t *testing.T) {
	r1 := startRelay(t, t.TempDir())
	r2 := startRelay(t, t.TempDir())
	wrong := r2.meshPeer()
	wrong.CertName = r1.region.Nodes[0].CertName // r1's pin for r2's address
	if err := r2.srv.Apply(Policy{MeshKey: testMeshKey}); err != nil {
		t.Fatal(err)
	}
	if err := r1.srv.Apply(Policy{MeshKey: testMeshKey, MeshWith: []MeshPeer{wrong}}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "a certificate error", func() error {
		m, _ := meshStatus(r1, wrong.String())
		if m.Connected {
			t.Fatal("mesh link connected to a server with the wrong certificate")
		}
		if !strings.Contains(m.Error, "cert hash does not match") {
			return errString("error " + m.Error)
		}
		return nil
	})
	if got := intVar(r2.srv.gen.Load().vars.Get("gauge_watchers")); got != 0 {
		t.Errorf("r2 has %d mesh watchers; the mesh key must not have been sent", got)
	}
}

func TestMeshNeedsKey(t *testing.T) {
	r1 := startRelay(t, t.TempDir())
	if err := r1.srv.Apply(Policy{MeshWith: []MeshPeer{{Host: "localhost:1"}}}); err != nil {
		t.Fatal(err)
	}
	if st := r1.srv.Status(); !strings.Contains(st.MeshError, "no mesh key") || len(st.Mesh) != 0 {
		t.Errorf("Status without a mesh key: MeshError %q, Mesh %+v; want the reason and no links", st.MeshError, st.Mesh)
	}
}

func TestParseMeshPeer(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    MeshPeer
		wantErr string
	}{
		{"derp2.example.com", MeshPeer{Host: "derp2.example.com"}, ""},
		{"derp2.example.com:12345", MeshPeer{Host: "derp2.example.com:12345"}, ""},
		{"derp2.example.com:12345/192.168.1.20", MeshPeer{Host: "derp2.example.com:12345", DialHost: "192.168.1.20"}, ""},
		{"[2001:db8::1]:12345/[2001:db8::2]", MeshPeer{Host: "[2001:db8::1]:12345", DialHost: "[2001:db8::2]"}, ""},
		// The syntax's every rule is spec's (TestParseMeshWith); these
		// show its messages reach the relay's callers.
		{"a/b/c", MeshPeer{}, "host[:port] or host[:port]/dialhost"},
		{"derp2:99999", MeshPeer{}, "not a port number"},
	} {
		got, err := ParseMeshPeer(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseMeshPeer(%q): got %+v, %v; want an error about %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseMeshPeer(%q): got %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// buildDerper builds upstream cmd/derper from the pinned tailscale.com.
func buildDerper(t *testing.T) string {
	t.Helper()
	goBin := testenv.NeedCommand(t, "go")
	bin := filepath.Join(t.TempDir(), "derper")
	cmd := exec.Command(goBin, "build", "-o", bin, "tailscale.com/cmd/derper")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building upstream derper: %v\n%s", err, out)
	}
	return bin
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// logLines copies a process's output into the test log.
func logLines(t *testing.T, prefix string, r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		t.Logf("%s%s", prefix, sc.Text())
	}
}

// TestMeshInteropUpstreamDerper meshes our relay with upstream derper
// built from the pinned tailscale.com: a client on each exchanges packets
// through the mesh. derper verifies our certificate its own way (system
// roots; the test makes our self-signed certificate one through
// SSL_CERT_FILE), and we pin derper's self-signed IP certificate.
func TestMeshInteropUpstreamDerper(t *testing.T) {
	testenv.NeedLong(t)
	derper := buildDerper(t)
	dir := t.TempDir()
	ours := startRelayWith(t, dir, relayOpts{host: "127.0.0.1", policy: Policy{MeshKey: testMeshKey}})
	ourCert := filepath.Join(t.TempDir(), "ours.crt")
	if err := os.WriteFile(ourCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ours.cert.Certificate[0]}), 0644); err != nil {
		t.Fatal(err)
	}

	udir := t.TempDir()
	keyFile := filepath.Join(udir, "mesh.key")
	if err := os.WriteFile(keyFile, []byte(testMeshKey+"\n"), 0600); err != nil {
		t.Fatal(err)
	}
	uport := freeTCPPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, derper,
		"-a", "127.0.0.1:"+strconv.Itoa(uport),
		"-http-port", "-1",
		"-stun=false",
		"-certmode", "manual",
		"-certdir", udir,
		"-hostname", "127.0.0.1",
		"-c", filepath.Join(udir, "derper.key"),
		"-mesh-psk-file", keyFile,
		"-mesh-with", "127.0.0.1:"+strconv.Itoa(ours.port()),
	)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+ourCert)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go logLines(t, "derper: ", stderr)
	t.Cleanup(func() { cancel(); cmd.Wait() })

	// derper made itself a self-signed certificate for 127.0.0.1.
	upstreamCrt := filepath.Join(udir, "127.0.0.1.crt")
	testwait.For(t, 20*time.Second, "upstream derper serving", func() error {
		if _, err := os.Stat(upstreamCrt); err != nil {
			return err
		}
		_, err := servedLeaf("127.0.0.1:" + strconv.Itoa(uport))
		return err
	})
	crtPEM, err := os.ReadFile(upstreamCrt)
	if err != nil {
		t.Fatal(err)
	}
	upstreamPin := spec.Pin(leafDER(t, crtPEM))
	peer := MeshPeer{Host: "127.0.0.1:" + strconv.Itoa(uport), CertName: upstreamPin}
	if err := ours.srv.Apply(Policy{MeshKey: testMeshKey, MeshWith: []MeshPeer{peer}}); err != nil {
		t.Fatal(err)
	}
	awaitMeshUp(t, ours, peer.String())
	testwait.For(t, 30*time.Second, "upstream derper watching us", func() error {
		if n := intVar(ours.srv.gen.Load().vars.Get("gauge_watchers")); n < 1 {
			return errString("no watcher yet")
		}
		return nil
	})

	upstreamRegion := &tailcfg.DERPRegion{RegionID: 900, RegionCode: "home", Nodes: []*tailcfg.DERPNode{{
		Name: "900b", RegionID: 900, HostName: "127.0.0.1", DERPPort: uport, CertName: upstreamPin,
	}}}
	a := relaytest.Connect(t, ours.region)
	b := relaytest.Connect(t, upstreamRegion)
	relaytest.Exchange(t, a, b)
	if got := intVar(ours.srv.gen.Load().vars.Get("packets_forwarded_out")); got < 1 {
		t.Errorf("our packets_forwarded_out: got %d, want the packets to b forwarded to derper", got)
	}
}

// TestMeshWithoutPinNeedsCA lists a peer the way derper does, without a
// pin and reached through a dial host: its self-signed certificate is
// checked against the CAs, refused, and the mesh key never sent.
func TestMeshWithoutPinNeedsCA(t *testing.T) {
	r1 := startRelay(t, t.TempDir())
	r2 := startRelay(t, t.TempDir())
	if err := r2.srv.Apply(Policy{MeshKey: testMeshKey}); err != nil {
		t.Fatal(err)
	}
	peer := MeshPeer{Host: "localhost:" + strconv.Itoa(r2.port()), DialHost: "127.0.0.1"}
	if err := r1.srv.Apply(Policy{MeshKey: testMeshKey, MeshWith: []MeshPeer{peer}}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "a certificate error", func() error {
		m, _ := meshStatus(r1, peer.String())
		if m.Connected {
			t.Fatal("mesh link connected to a self-signed peer without a pin")
		}
		if !strings.Contains(m.Error, "x509") {
			return errString("error " + m.Error)
		}
		return nil
	})
	if got := accepts(r2.srv); got != 0 {
		t.Errorf("r2 accepted %d DERP connections; the TLS check must stop the link first", got)
	}
}
