// Package ddnstest has the small Internet services the ddns tests talk
// to: a DNS "whoami" server (UDP, TCP and DNS over TLS) like 1.1.1.1's, a
// STUN responder that can be told to lie or misbehave, and a NAT-PMP
// gateway. Each listens on loopback by default, or on sockets the caller
// opened inside a network namespace, and stops when the test ends.
//
// The test bed uses tailscale.com/net/stunserver for honest STUN servers;
// the responder here exists for the failure cases (disagreeing servers,
// wrong transaction IDs) that an honest server cannot produce.
package ddnstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/detect"
	"github.com/miekg/dns"
	"tailscale.com/net/stun"
)

// Whoami answers "whoami.cloudflare." TXT CH with the query's source
// address, as Cloudflare's resolvers do.
type Whoami struct {
	UDPAddr netip.AddrPort // plain DNS (UDP and TCP on the same port)
	TLSAddr netip.AddrPort // DNS over TLS
	TLSName string         // the name in its certificate
	Roots   *x509.CertPool // trusts its certificate

	mu       sync.Mutex
	override netip.Addr
	down     bool
	garbage  []string
	queries  atomic.Int64
}

// WhoamiOptions are the sockets to serve on; nil ones are opened on
// 127.0.0.1.
type WhoamiOptions struct {
	UDP net.PacketConn
	TCP net.Listener // plain DNS over TCP, same port as UDP
	TLS net.Listener // DNS over TLS
}

// StartWhoami starts a whoami server.
func StartWhoami(t testing.TB, o WhoamiOptions) *Whoami {
	t.Helper()
	w := &Whoami{TLSName: "whoami.test"}
	if o.UDP == nil {
		o.UDP, o.TCP = loopbackPair(t)
	}
	if o.TLS == nil {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o.TLS = l
	}
	cert, roots := selfSigned(t, w.TLSName)
	w.Roots = roots
	w.UDPAddr = addrPort(o.UDP.LocalAddr())
	w.TLSAddr = addrPort(o.TLS.Addr())
	h := dns.HandlerFunc(w.serve)
	servers := []*dns.Server{
		{PacketConn: o.UDP, Handler: h},
		{Listener: tls.NewListener(o.TLS, &tls.Config{Certificates: []tls.Certificate{cert}}), Handler: h, Net: "tcp-tls"},
	}
	if o.TCP != nil {
		servers = append(servers, &dns.Server{Listener: o.TCP, Handler: h})
	}
	for _, s := range servers {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
	return w
}

// DoT returns the server as a detect.WhoamiServer over DNS over TLS.
func (w *Whoami) DoT() detect.WhoamiServer {
	return detect.WhoamiServer{Addr: w.TLSAddr, TLSName: w.TLSName}
}

// Plain returns the server as a plain DNS detect.WhoamiServer.
func (w *Whoami) Plain() detect.WhoamiServer { return detect.WhoamiServer{Addr: w.UDPAddr} }

// Report makes the server claim every client is at a (as a server behind
// the NAT of a loopback test would see the public address); the zero
// Addr restores the real source address.
func (w *Whoami) Report(a netip.Addr) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.override = a
}

// SetDown makes the server ignore queries (clients time out).
func (w *Whoami) SetDown(down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down = down
}

// SetGarbage makes the server answer with these TXT strings instead of
// an address (nil restores proper answers).
func (w *Whoami) SetGarbage(txt []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.garbage = txt
}

// Queries returns how many queries were answered.
func (w *Whoami) Queries() int64 { return w.queries.Load() }

func (w *Whoami) serve(rw dns.ResponseWriter, req *dns.Msg) {
	w.mu.Lock()
	down, override, garbage := w.down, w.override, w.garbage
	w.mu.Unlock()
	if down {
		return // no answer at all: the client times out
	}
	w.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	if q.Qclass != dns.ClassCHAOS || q.Qtype != dns.TypeTXT || !dns.IsSubDomain(detect.WhoamiName, dns.Fqdn(q.Name)) {
		m.Rcode = dns.RcodeRefused
		rw.WriteMsg(m)
		return
	}
	src := addrPort(rw.RemoteAddr()).Addr()
	if override.IsValid() {
		src = override
	}
	txt := []string{src.String()}
	if garbage != nil {
		txt = garbage
	}
	m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: txt})
	rw.WriteMsg(m)
}

// STUN is a STUN responder that can report a chosen address, answer with
// a wrong transaction ID, or stay silent.
type STUN struct {
	Addr netip.AddrPort

	mu      sync.Mutex
	report  netip.Addr
	wrongTx bool
	down    bool
	hits    atomic.Int64
}

// StartSTUN serves STUN on pc (nil = 127.0.0.1:0).
func StartSTUN(t testing.TB, pc net.PacketConn) *STUN {
	t.Helper()
	if pc == nil {
		var err error
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	s := &STUN{Addr: addrPort(pc.LocalAddr())}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			tx, err := stun.ParseBindingRequest(buf[:n])
			if err != nil {
				continue
			}
			s.mu.Lock()
			report, wrongTx, down := s.report, s.wrongTx, s.down
			s.mu.Unlock()
			if down {
				continue
			}
			s.hits.Add(1)
			src := addrPort(from)
			if report.IsValid() {
				src = netip.AddrPortFrom(report, src.Port())
			}
			if wrongTx {
				tx = stun.NewTxID()
			}
			pc.WriteTo(stun.Response(tx, src), from)
		}
	}()
	return s
}

// Report makes the responder claim clients are at a (keeping their
// port); the zero Addr restores the real source.
func (s *STUN) Report(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.report = a
}

// SetWrongTxID makes responses carry a transaction ID that matches no
// request.
func (s *STUN) SetWrongTxID(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wrongTx = on
}

// SetDown makes the responder ignore requests.
func (s *STUN) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Hits returns how many requests were answered.
func (s *STUN) Hits() int64 { return s.hits.Load() }

// StartNATPMP answers NAT-PMP external-address requests (RFC 6886 opcode
// 0) on pc with what external returns, as a home router would.
func StartNATPMP(t testing.TB, pc net.PacketConn, external func() netip.Addr) {
	t.Helper()
	t.Cleanup(func() { pc.Close() })
	start := time.Now()
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 2 || buf[0] != 0 || buf[1] != 0 {
				continue
			}
			resp := make([]byte, 12)
			resp[1] = 128
			binary.BigEndian.PutUint32(resp[4:8], uint32(time.Since(start)/time.Second))
			a := external().As4()
			copy(resp[8:], a[:])
			pc.WriteTo(resp, from)
		}
	}()
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// loopbackPair opens UDP and TCP sockets on the same 127.0.0.1 port.
func loopbackPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp4", l.Addr().String())
		if err == nil {
			return pc, l
		}
		l.Close()
	}
	t.Fatal("ddnstest: no port free for both UDP and TCP")
	return nil, nil
}

// selfSigned makes a certificate for name and a pool trusting it.
func selfSigned(t testing.TB, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
