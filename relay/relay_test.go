package relay

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"expvar"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/homederp/homederp/relay/relaytest"
	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
)

// testRelay is a relay on loopback with the map a user would paste.
type testRelay struct {
	srv    *Server
	region *tailcfg.DERPRegion
	cert   *tls.Certificate // the self-signed certificate it started with
}

func startRelay(t *testing.T, dir string) *testRelay {
	t.Helper()
	return startRelayWith(t, dir, relayOpts{})
}

func TestClientsExchangePackets(t *testing.T) {
	tr := startRelay(t, t.TempDir())
	a := relaytest.Connect(t, tr.region)
	b := relaytest.Connect(t, tr.region)
	relaytest.Exchange(t, a, b)
}

func TestPinRefusesOtherCert(t *testing.T) {
	tr := startRelay(t, t.TempDir())
	other, err := LoadOrCreateSelfSigned(t.TempDir(), "localhost", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	region := *tr.region
	n := *region.Nodes[0]
	n.CertName = spec.Pin(other.Certificate[0])
	region.Nodes = []*tailcfg.DERPNode{&n}
	if _, err := relaytest.TryConnect(t, &region); err == nil {
		t.Fatal("Connect with the wrong pin succeeded, want a certificate error")
	}
}

func stunRoundTrip(t *testing.T, network string, server net.Addr) {
	t.Helper()
	conn, err := net.ListenPacket(network, "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var lastErr error
	for try := 0; try < 5; try++ {
		tx := stun.NewTxID()
		if _, err := conn.WriteTo(stun.Request(tx), server); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 1500)
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			lastErr = err
			continue
		}
		gotTx, addr, err := stun.ParseResponse(buf[:n])
		if err != nil {
			t.Fatalf("ParseResponse: %v", err)
		}
		if gotTx != tx {
			t.Fatalf("transaction ID: got %x, want %x", gotTx, tx)
		}
		local := conn.LocalAddr().(*net.UDPAddr)
		want := netip.AddrPortFrom(netip.MustParseAddr(map[string]string{"udp4": "127.0.0.1", "udp6": "::1"}[network]), uint16(local.Port))
		if addr != want {
			t.Errorf("STUN mapped address: got %v, want %v", addr, want)
		}
		return
	}
	t.Fatalf("no STUN answer from %v: %v", server, lastErr)
}

func TestSTUN(t *testing.T) {
	tr := startRelay(t, t.TempDir())
	addrs := tr.srv.STUNAddrs()
	if len(addrs) != 2 {
		t.Fatalf("STUN listeners: got %v, want IPv4 and IPv6", addrs)
	}
	stunRoundTrip(t, "udp4", addrs[0])
	stunRoundTrip(t, "udp6", addrs[1])
}

func TestBindFailureIsAnError(t *testing.T) {
	dir := t.TempDir()
	tr := startRelay(t, dir)
	cert, _ := LoadOrCreateSelfSigned(t.TempDir(), "localhost", time.Now(), nil)
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"DERP port taken", Config{DERPAddrs: []string{tr.srv.DERPAddr().String()}, STUNAddrs: []string{"127.0.0.1:0"}}},
		{"second DERP address taken", Config{DERPAddrs: []string{"127.0.0.1:0", tr.srv.DERPAddr().String()}, STUNAddrs: []string{"127.0.0.1:0"}}},
		{"STUN port taken", Config{DERPAddrs: []string{"127.0.0.1:0"}, STUNAddrs: []string{tr.srv.STUNAddrs()[0].String()}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Hostname = "localhost"
			cfg.KeyPath = filepath.Join(t.TempDir(), "k")
			cfg.Certs = StaticCert{Cert: cert}
			s, err := New(cfg, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err == nil {
				s.Close()
				t.Fatal("Start on a taken port: got nil error")
			}
		})
	}
}

func TestKeyAndCertAreKept(t *testing.T) {
	dir := t.TempDir()
	tr1 := startRelay(t, dir)
	pub1 := tr1.srv.DERP().PublicKey()
	tr1.srv.Close()
	tr2 := startRelay(t, dir)
	if got := tr2.srv.DERP().PublicKey(); got != pub1 {
		t.Errorf("second start: key %v, want the first start's %v", got, pub1)
	}
	if !bytes.Equal(tr1.cert.Certificate[0], tr2.cert.Certificate[0]) {
		t.Error("second start made a new certificate; the pin in the user's map would break")
	}
}

func httpsClient(tr *testRelay) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // the pin is checked below
			VerifyConnection: func(cs tls.ConnectionState) error {
				if spec.Pin(cs.PeerCertificates[0].Raw) != tr.region.Nodes[0].CertName {
					return fmt.Errorf("unexpected certificate")
				}
				return nil
			},
		}},
	}
}

func TestHTTPEndpoints(t *testing.T) {
	tr := startRelay(t, t.TempDir())
	base := "https://" + tr.srv.DERPAddr().String()
	hc := httpsClient(tr)

	for _, tt := range []struct {
		method, path string
		header       http.Header
		wantCode     int
		check        func(*http.Response, []byte) error
	}{
		{"GET", "/derp/probe", nil, 200, func(r *http.Response, _ []byte) error {
			if r.Header.Get("Access-Control-Allow-Origin") != "*" {
				return fmt.Errorf("no CORS header")
			}
			return nil
		}},
		{"HEAD", "/derp/latency-check", nil, 200, nil},
		{"POST", "/derp/probe", nil, 405, nil},
		{"GET", "/generate_204", http.Header{"X-Tailscale-Challenge": {"abc123"}}, 204, func(r *http.Response, _ []byte) error {
			if got, want := r.Header.Get("X-Tailscale-Response"), "response abc123"; got != want {
				return fmt.Errorf("challenge response: got %q, want %q", got, want)
			}
			return nil
		}},
		{"GET", "/derp", nil, 426, nil},
		{"GET", "/debug/", nil, 404, nil},
		{"GET", "/debug/pprof/", nil, 404, nil},
		{"GET", "/derpmap.json", nil, 200, func(r *http.Response, b []byte) error {
			var m tailcfg.DERPMap
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			if m.Regions[900] == nil || m.Regions[900].Nodes[0].DERPPort != tr.region.Nodes[0].DERPPort {
				return fmt.Errorf("unexpected map %s", b)
			}
			return nil
		}},
	} {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status: got %d, want %d (%s)", resp.StatusCode, tt.wantCode, b)
			}
			if tt.check != nil {
				if err := tt.check(resp, b); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestPlainHTTPIsRefused(t *testing.T) {
	tr := startRelay(t, t.TempDir())
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + tr.srv.DERPAddr().String() + "/derp/probe")
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP request on the DERP port succeeded; TLS must always be on")
		}
	}
}

func stunCounter(name string) int64 {
	v := expvar.Get("stun")
	if v == nil {
		return 0
	}
	var m map[string]map[string]int64
	json.Unmarshal([]byte(v.String()), &m)
	return m["counter_requests"][name]
}

// TestBadInput throws garbage at both ports and checks the relay keeps
// serving real clients.
func TestBadInput(t *testing.T) {
	tr := startRelay(t, t.TempDir())
	derpAddr := tr.srv.DERPAddr().String()

	// Garbage bytes on the DERP port.
	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		bytes.Repeat([]byte{0xff}, 4096),
		{0x16, 0x03, 0x01, 0xff, 0xff}, // TLS record header promising 64 KiB
		{},
	} {
		c, err := net.Dial("tcp", derpAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(junk)
		c.Close()
	}
	// Half-open TLS: a ClientHello that never finishes, kept open while a
	// real client connects.
	halfOpen, err := net.Dial("tcp", derpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer halfOpen.Close()
	halfOpen.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00})
	// A TLS client that completes the handshake and then sends nothing.
	idle, err := tls.Dial("tcp", derpAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer idle.Close()

	// Non-STUN datagrams on the STUN port.
	before := stunCounter("not_stun")
	u, err := net.Dial("udp4", tr.srv.STUNAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, junk := range [][]byte{{}, {0}, []byte("hello"), bytes.Repeat([]byte{0x00, 0x01}, 700), append(stun.Request(stun.NewTxID())[:20], 0xde, 0xad)} {
		u.Write(junk)
	}

	// The relay still serves.
	a := relaytest.Connect(t, tr.region)
	b := relaytest.Connect(t, tr.region)
	relaytest.Exchange(t, a, b)
	stunRoundTrip(t, "udp4", tr.srv.STUNAddrs()[0])
	if got := stunCounter("not_stun") - before; got < 4 {
		t.Errorf("not_stun counter grew by %d, want at least 4", got)
	}
}
