package relay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/tailcfg"
)

// relayOpts vary a test relay.
type relayOpts struct {
	host             string     // default "localhost"
	certs            CertSource // default the self-signed certificate
	policy           Policy
	handshakeTimeout time.Duration
	idleTimeout      time.Duration
	pollInterval     time.Duration
	verdictTimeout   time.Duration
	maxPending       int
	logf             func(string, ...any) // default t.Logf
}

func startRelayWith(t testing.TB, dir string, o relayOpts) *testRelay {
	t.Helper()
	if o.host == "" {
		o.host = "localhost"
	}
	if o.logf == nil {
		o.logf = t.Logf
	}
	ss, err := SelfSigned(filepath.Join(dir, "certs"), o.host, time.Now(), o.logf)
	if err != nil {
		t.Fatal(err)
	}
	if o.certs == nil {
		o.certs = ss
	}
	tr := &testRelay{cert: ss.Cert}
	srv, err := New(Config{
		Hostname:  o.host,
		DERPAddrs: []string{"127.0.0.1:0"},
		STUNAddrs: []string{"127.0.0.1:0", "[::1]:0"},
		KeyPath:   filepath.Join(dir, "derper.key"),
		Certs:     o.certs,
		DERPMap: func() ([]byte, error) {
			return derpmap.JSON(&tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{900: tr.region}})
		},
		Policy:             o.policy,
		HandshakeTimeout:   o.handshakeTimeout,
		IdleTimeout:        o.idleTimeout,
		PollInterval:       o.pollInterval,
		VerdictTimeout:     o.verdictTimeout,
		MaxPendingVerdicts: o.maxPending,
	}, o.logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tr.srv = srv

	c := config.Default()
	c.Hostname = o.host
	c.Relay.DERPPort = srv.DERPAddr().(*net.TCPAddr).Port
	c.Relay.STUNPort = srv.STUNAddrs()[0].(*net.UDPAddr).Port
	tr.region = derpmap.Region(c, derpmap.Options{PinnedCert: srv.PinnedCert()})
	return tr
}

// pinned returns a copy of region whose node pins der.
func pinned(region *tailcfg.DERPRegion, der []byte) *tailcfg.DERPRegion {
	r := *region
	n := *r.Nodes[0]
	n.CertName = spec.Pin(der)
	n.InsecureForTests = false
	r.Nodes = []*tailcfg.DERPNode{&n}
	return &r
}

// accepts is how many connections the current derpserver accepted: it
// stays the same while connected clients keep their connections.
func accepts(s *Server) int64 { return intVar(s.gen.Load().vars.Get("accepts")) }

// testCA issues certificates like a small private CA.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "homederp test CA", Organization: []string{"homederp test CA"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

var serial = big.NewInt(100)

// issue returns a leaf for host (a DNS name or an IP) valid from nb to na.
func (ca *testCA) issue(t testing.TB, host string, nb, na time.Time) (crtPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial = new(big.Int).Add(serial, big.NewInt(1))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// leafDER returns the DER of the first certificate in crtPEM.
func leafDER(t testing.TB, crtPEM []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(crtPEM)
	if b == nil {
		t.Fatal("no PEM certificate")
	}
	return b.Bytes
}

// writePair writes a manual pair for host into dir the way a user
// replacing files would: key first, then certificate.
func writePair(t testing.TB, dir, host string, crtPEM, keyPEM []byte) {
	t.Helper()
	crt, key := ManualCertPaths(dir, host)
	if err := os.MkdirAll(dir, 0700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crt, crtPEM, 0644); err != nil {
		t.Fatal(err)
	}
}

// servedLeaf does a TLS handshake with the relay and returns the DER of
// the certificate it serves.
func servedLeaf(addr string) ([]byte, error) {
	conn, err := tlsDial(addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate")
	}
	return certs[0].Raw, nil
}

func tlsDial(addr string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
}
