// Package bindtest starts a real BIND 9 named (Debian's bind9 package) for
// a test: authoritative for one zone, accepting dynamic updates (RFC 2136)
// signed with one TSIG key, listening on loopback on a random port or on
// port 53 inside a network namespace. It stops when the test ends; on a
// failure its log is in the test output.
//
//	srv := bindtest.Start(t, bindtest.Options{Zone: "example.com.", Records: []string{"derp 60 IN A 192.0.2.1"}})
//	// srv.Addr is "127.0.0.1:<port>"; update with srv.KeyName/KeyAlgorithm/Secret.
//
// The ACME DNS-01 tests use it as the zone's authoritative server that
// Pebble validates against: the key may update any name in the zone.
package bindtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testenv"
	"github.com/miekg/dns"
)

// Options describe the server.
type Options struct {
	Zone    string   // e.g. "example.com."; default "example.com."
	Records []string // zone-file lines relative to the zone, e.g. "derp 60 IN A 192.0.2.1"

	KeyName      string // default "homederp-test."
	KeyAlgorithm string // default "hmac-sha256."
	Secret       string // base64; default 32 random bytes

	// Addrs to listen on; default 127.0.0.1. Port 0 picks a free port
	// (only safe on loopback); in a namespace use port 53.
	Addrs []netip.Addr
	Port  uint16
	// NSName is the zone's name server; default "ns1.<zone>", with A/AAAA
	// records for NSAddrs.
	NSName string
	// Others are further zones named serves, without updates, by name
	// (e.g. "pool.ntp.org.") with their zone-file lines; their SOA and NS
	// name NSName.
	Others map[string][]string
	// NSAddrs are NSName's addresses in the zone when it is inside it,
	// for clients that reach named elsewhere than at Addrs (a qemu guest
	// reaches the host's loopback at slirp's 10.0.2.2); default Addrs.
	NSAddrs []netip.Addr

	// Command wraps how named starts, e.g. a netnstest.NS's Command to
	// run it inside a namespace; nil = on the host.
	Command func(ctx context.Context, name string, args ...string) *exec.Cmd
	// Dial reaches named for the readiness check, e.g. a netnstest
	// dialer of a namespace that can reach Addrs; nil = the host's.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Server is a running named.
type Server struct {
	Addr         netip.AddrPort // the first listen address, e.g. 127.0.0.1:40053
	Addrs        []netip.AddrPort
	Zone         string // "example.com."
	KeyName      string // "homederp-test."
	KeyAlgorithm string // "hmac-sha256."
	Secret       string // base64
	Dir          string

	log *syncBuffer
}

// Start runs named and waits until it serves the zone. It skips (or, under
// HOMEDERP_TEST_ALL=1, fails) when named is not installed.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	named := testenv.NeedCommand(t, "named")
	if o.Zone == "" {
		o.Zone = "example.com."
	}
	o.Zone = strings.ToLower(dns.Fqdn(o.Zone))
	if o.KeyName == "" {
		o.KeyName = "homederp-test."
	}
	if o.KeyAlgorithm == "" {
		o.KeyAlgorithm = "hmac-sha256."
	}
	if o.Secret == "" {
		b := make([]byte, 32)
		rand.Read(b)
		o.Secret = base64.StdEncoding.EncodeToString(b)
	}
	if len(o.Addrs) == 0 {
		o.Addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	if o.NSName == "" {
		o.NSName = "ns1." + o.Zone
	}
	if o.Command == nil {
		o.Command = exec.CommandContext
	}

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := o.Port
		if port == 0 {
			port = freePort(t, o.Addrs[0])
		}
		s, err := start(t, named, o, port)
		if err == nil {
			return s
		}
		lastErr = err
		if o.Port != 0 {
			break
		}
	}
	t.Fatalf("bindtest: starting named: %v", lastErr)
	return nil
}

func start(t testing.TB, named string, o Options, port uint16) (*Server, error) {
	dir, err := os.MkdirTemp("", "hd-bindtest-")
	if err != nil {
		return nil, err
	}
	// named may drop privileges to the bind user; let it read and write
	// its directory.
	os.Chmod(dir, 0777)
	t.Cleanup(func() { os.RemoveAll(dir) })

	s := &Server{Zone: o.Zone, KeyName: dns.Fqdn(o.KeyName), KeyAlgorithm: dns.Fqdn(o.KeyAlgorithm), Secret: o.Secret, Dir: dir, log: &syncBuffer{}}
	var v4, v6 []string
	for _, a := range o.Addrs {
		s.Addrs = append(s.Addrs, netip.AddrPortFrom(a, port))
		if a.Is4() {
			v4 = append(v4, a.String()+";")
		} else {
			v6 = append(v6, a.String()+";")
		}
	}
	s.Addr = s.Addrs[0]
	listen6 := "none;"
	if len(v6) > 0 {
		listen6 = strings.Join(v6, " ")
	}
	listen4 := "none;"
	if len(v4) > 0 {
		listen4 = strings.Join(v4, " ")
	}
	zoneFile := filepath.Join(dir, "zone.db")
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { %[3]s };
	listen-on-v6 port %[2]d { %[4]s };
	recursion no;
	allow-query { any; };
	dnssec-validation no;
	notify no;
	minimal-responses no;
};
controls { };
key "%[5]s" {
	algorithm %[6]s;
	secret "%[7]s";
};
zone "%[8]s" {
	type primary;
	file "%[9]s";
	update-policy { grant %[5]s zonesub ANY; };
};
`, dir, port, listen4, listen6, s.KeyName, strings.TrimSuffix(s.KeyAlgorithm, "."), s.Secret, o.Zone, zoneFile)

	var zone strings.Builder
	fmt.Fprintf(&zone, "$ORIGIN %s\n$TTL 60\n", o.Zone)
	fmt.Fprintf(&zone, "@ IN SOA %s hostmaster.%s 1 3600 600 86400 60\n", dns.Fqdn(o.NSName), o.Zone)
	fmt.Fprintf(&zone, "@ IN NS %s\n", dns.Fqdn(o.NSName))
	nsAddrs := o.NSAddrs
	if len(nsAddrs) == 0 {
		nsAddrs = o.Addrs
	}
	if dns.IsSubDomain(o.Zone, dns.Fqdn(o.NSName)) {
		for _, a := range nsAddrs {
			typ := "A"
			if a.Is6() {
				typ = "AAAA"
			}
			fmt.Fprintf(&zone, "%s IN %s %s\n", dns.Fqdn(o.NSName), typ, a)
		}
	}
	for _, r := range o.Records {
		fmt.Fprintln(&zone, r)
	}
	for name, records := range o.Others {
		name = dns.Fqdn(name)
		file := filepath.Join(dir, "other-"+strings.TrimSuffix(name, ".")+".db")
		conf += fmt.Sprintf("zone %q {\n\ttype primary;\n\tfile %q;\n};\n", name, file)
		z := fmt.Sprintf("$ORIGIN %s\n$TTL 60\n@ IN SOA %s hostmaster.%[1]s 1 3600 600 86400 60\n@ IN NS %[2]s\n%s\n", name, dns.Fqdn(o.NSName), strings.Join(records, "\n"))
		if err := os.WriteFile(file, []byte(z), 0666); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "named.conf"), []byte(conf), 0644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(zoneFile, []byte(zone.String()), 0666); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	cmd := o.Command(ctx, named, "-g", "-c", filepath.Join(dir, "named.conf"), "-n", "1")
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	}

	// Wait until it serves the zone's SOA, at most 15 s.
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			stop()
			return nil, fmt.Errorf("named exited at start:\n%s", s.log.String())
		default:
		}
		if s.query(o.Dial, s.Addr) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("named did not serve %s within 15s:\n%s", o.Zone, s.log.String())
		}
		time.Sleep(50 * time.Millisecond) // polling a process we do not control
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("named log:\n%s", s.log.String())
		}
	})
	return s, nil
}

// query reports whether named answers the zone's SOA authoritatively.
func (s *Server) query(dial func(ctx context.Context, network, addr string) (net.Conn, error), a netip.AddrPort) bool {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	conn, err := dial(ctx, "udp", a.String())
	if err != nil {
		return false
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion(s.Zone, dns.TypeSOA)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	r, _, err := c.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: conn})
	return err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative
}

// Log returns what named printed so far.
func (s *Server) Log() string { return s.log.String() }

// freePort finds a port free for both UDP and TCP on a.
func freePort(t testing.TB, a netip.Addr) uint16 {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
		if err != nil {
			t.Fatalf("bindtest: finding a free port: %v", err)
		}
		port := uint16(l.Addr().(*net.TCPAddr).Port)
		pc, err := net.ListenPacket("udp", netip.AddrPortFrom(a, port).String())
		l.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("bindtest: no free port")
	return 0
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
