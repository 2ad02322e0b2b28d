package acmedns

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// testLogf forwards to t.Logf until the test ends: certmagic's and
// Pebble's goroutines may still log a line while they wind down.
func testLogf(t testing.TB) func(format string, args ...any) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(format, args...)
		}
	}
}

// testRelay is a relay on loopback serving certificates from a source.
type testRelay struct {
	srv  *relay.Server
	host string
	addr string // "127.0.0.1:port" of DERP over TLS
	c    config.Config
}

func startRelay(t testing.TB, dir, host string, certs relay.CertSource) *testRelay {
	t.Helper()
	srv, err := relay.New(relay.Config{
		Hostname:  host,
		DERPAddrs: []string{"127.0.0.1:0"},
		STUNAddrs: []string{"127.0.0.1:0"},
		KeyPath:   filepath.Join(dir, "derper.key"),
		Certs:     certs,
	}, testLogf(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := config.Default()
	c.Hostname = host
	c.Cert.Mode = config.CertACMEDNS
	c.Relay.DERPPort = srv.DERPAddr().(*net.TCPAddr).Port
	c.Relay.STUNPort = srv.STUNAddrs()[0].(*net.UDPAddr).Port
	return &testRelay{srv: srv, host: host, addr: srv.DERPAddr().String(), c: c}
}

// region is the home region exactly as the appliance would emit it now
// (pinned while the self-signed certificate serves, plain once the
// trusted one does), plus the loopback address so the test's clients
// need no DNS.
func (r *testRelay) region() *tailcfg.DERPRegion {
	reg := derpmap.Region(r.c, derpmap.Options{PinnedCert: r.srv.PinnedCert()})
	reg.Nodes[0].IPv4 = "127.0.0.1"
	reg.Nodes[0].IPv6 = "none"
	return reg
}

// connect dials region with a derphttp client that trusts roots in
// addition to the system's, as tailscaled does with extra roots; nil
// roots = the system's only. The client is closed when the test ends.
func connect(t testing.TB, region *tailcfg.DERPRegion, roots *x509.CertPool) (*relaytest.Client, error) {
	t.Helper()
	priv := key.NewNode()
	c := derphttp.NewRegionClient(priv, testLogf(t), netmon.NewStatic(), func() *tailcfg.DERPRegion { return region })
	if roots != nil {
		c.TLSConfig = &tls.Config{RootCAs: roots}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &relaytest.Client{Client: c, Priv: priv}, nil
}

func mustConnect(t testing.TB, region *tailcfg.DERPRegion, roots *x509.CertPool) *relaytest.Client {
	t.Helper()
	c, err := connect(t, region, roots)
	if err != nil {
		t.Fatalf("derphttp connect: %v", err)
	}
	return c
}

// servedChain does a TLS handshake with the relay that verifies the
// certificate against roots only (no system roots, no skipping), and
// returns the verified chain.
func servedChain(addr, host string, roots *x509.CertPool) ([]*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: host, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	chains := conn.ConnectionState().VerifiedChains
	if len(chains) == 0 {
		return nil, fmt.Errorf("no verified chain")
	}
	return chains[0], nil
}

// servedLeaf returns the leaf the relay serves, without verifying it.
func servedLeaf(addr, host string) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: host, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// closedAddr returns a loopback address where nothing listens (a DNS
// server that is down).
func closedAddr(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// connState returns the local address and served leaf of c's current
// connection: both stay the same while the connection is kept.
func connState(t testing.TB, c *relaytest.Client) (local string, leaf *x509.Certificate) {
	t.Helper()
	la, err := c.LocalAddr()
	if err != nil {
		t.Fatalf("LocalAddr: %v", err)
	}
	cs, ok := c.TLSConnectionState()
	if !ok || len(cs.PeerCertificates) == 0 {
		t.Fatal("no TLS connection state")
	}
	return la.String(), cs.PeerCertificates[0]
}
