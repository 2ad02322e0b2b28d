package detect

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// WhoamiServer is a DNS server that answers "whoami.cloudflare." TXT in
// class CH with the query's source address, as 1.1.1.1 does.
type WhoamiServer struct {
	Addr netip.AddrPort // e.g. 1.1.1.1:853
	// TLSName is the name in the server's certificate, e.g.
	// "cloudflare-dns.com". It selects DNS over TLS, which routers that
	// hijack port 53 cannot intercept and off-path attackers cannot spoof.
	// Empty means plain DNS over UDP (TCP on truncation).
	TLSName string
}

func (s WhoamiServer) String() string {
	if s.TLSName != "" {
		return fmt.Sprintf("whoami %s (DoT %s)", s.Addr, s.TLSName)
	}
	return fmt.Sprintf("whoami %s", s.Addr)
}

// WhoamiName is the query name of Cloudflare's whoami service.
const WhoamiName = "whoami.cloudflare."

// Whoami asks s for the source address it sees. The answer must be exactly
// one TXT string holding one address of the server's family; anything else
// (an HTML error page, two addresses, an empty answer) is an error, never an
// address.
func Whoami(ctx context.Context, d Dialer, s WhoamiServer, tlsConf *tls.Config, timeout time.Duration) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m := new(dns.Msg)
	m.Id = dns.Id()
	m.RecursionDesired = true
	// SetQuestion would force class IN; whoami lives in class CH.
	m.Question = []dns.Question{{Name: WhoamiName, Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}

	fam := "4"
	if s.Addr.Addr().Is6() {
		fam = "6"
	}
	var r *dns.Msg
	var err error
	if s.TLSName != "" {
		r, err = exchangeTLS(ctx, d, "tcp"+fam, s.Addr.String(), s.TLSName, tlsConf, m)
	} else {
		r, err = exchange(ctx, d, "udp"+fam, s.Addr.String(), m)
		if err == nil && r.Truncated {
			r, err = exchange(ctx, d, "tcp"+fam, s.Addr.String(), m)
		}
	}
	if err != nil {
		return netip.Addr{}, err
	}
	return parseWhoami(r, s.Addr.Addr().Is6())
}

func parseWhoami(r *dns.Msg, want6 bool) (netip.Addr, error) {
	if r.Rcode != dns.RcodeSuccess {
		return netip.Addr{}, fmt.Errorf("answer code %s", dns.RcodeToString[r.Rcode])
	}
	var txts []string
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.EqualFold(t.Hdr.Name, WhoamiName) {
			txts = append(txts, t.Txt...)
		}
	}
	if len(txts) != 1 {
		return netip.Addr{}, fmt.Errorf("got %d TXT strings, want exactly 1", len(txts))
	}
	a, err := netip.ParseAddr(strings.TrimSpace(txts[0]))
	if err != nil || a.Zone() != "" {
		// A zone ("2001:db8::1%eth0") names an interface of the
		// server, never a public address.
		return netip.Addr{}, fmt.Errorf("answer %.40q is not an address", txts[0])
	}
	a = a.Unmap()
	if a.Is6() != want6 {
		return netip.Addr{}, fmt.Errorf("answer %v is of the wrong family", a)
	}
	return a, nil
}

// exchange sends m over a fresh connection from d.
func exchange(ctx context.Context, d Dialer, network, addr string, m *dns.Msg) (*dns.Msg, error) {
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return exchangeConn(ctx, c, m)
}

func exchangeTLS(ctx context.Context, d Dialer, network, addr, name string, conf *tls.Config, m *dns.Msg) (*dns.Msg, error) {
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var tc *tls.Config
	if conf != nil {
		tc = conf.Clone()
	} else {
		tc = &tls.Config{}
	}
	tc.ServerName = name
	tc.MinVersion = tls.VersionTLS12
	t := tls.Client(c, tc)
	if err := t.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS with %s: %w", name, err)
	}
	return exchangeConn(ctx, t, m)
}

func exchangeConn(ctx context.Context, c net.Conn, m *dns.Msg) (*dns.Msg, error) {
	cl := &dns.Client{Timeout: 30 * time.Second}
	r, _, err := cl.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: c})
	return r, err
}
