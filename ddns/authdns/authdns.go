// Package authdns asks a zone's authoritative name servers directly what
// they serve for a name.
//
// Comparing against the authoritative servers, rather than the provider's
// API or a recursive resolver, costs no API quota, sees no stale caches and
// catches manual edits, deletions and a Cloudflare proxy switched on. The
// ACME DNS-01 solver can use the same code to wait until every name server
// serves its TXT record.
package authdns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Dialer opens connections; *net.Dialer is one, and a test bed passes one
// that dials from inside a network namespace.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Checker finds a name's zone and asks its servers. The zero value uses
// the system's resolvers and port 53.
type Checker struct {
	// Resolvers are recursive resolvers used only to find the zone, its
	// NS names and their addresses; nil = /etc/resolv.conf.
	Resolvers []netip.AddrPort
	// Port is the authoritative servers' port; 0 = 53. Tests on loopback
	// set it to BIND's or the fake's random port.
	Port    uint16
	Net     Dialer        // nil = net.Dialer
	Timeout time.Duration // per query; 0 = 3s
	// CacheFor keeps a discovered zone and its servers; 0 = 1h.
	CacheFor time.Duration

	mu    sync.Mutex
	cache map[string]cached // by lowercase FQDN
}

type cached struct {
	zone    string
	servers []Server
	expires time.Time
}

// Server is one address of one of the zone's name servers.
type Server struct {
	Name string         // e.g. "ns1.example.com."
	Addr netip.AddrPort // e.g. 192.0.2.53:53
}

func (s Server) String() string {
	return fmt.Sprintf("%s (%v)", strings.TrimSuffix(s.Name, "."), s.Addr.Addr())
}

func (c *Checker) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 3 * time.Second
}

func (c *Checker) dialer() Dialer {
	if c.Net != nil {
		return c.Net
	}
	return &net.Dialer{}
}

func (c *Checker) resolvers() ([]netip.AddrPort, error) {
	if len(c.Resolvers) > 0 {
		return c.Resolvers, nil
	}
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("no resolvers configured and /etc/resolv.conf unusable: %w", err)
	}
	var out []netip.AddrPort
	for _, s := range cc.Servers {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no resolvers in /etc/resolv.conf")
	}
	return out, nil
}

// resolve sends a recursive query to the first resolver that answers.
func (c *Checker) resolve(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	rs, err := c.resolvers()
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	var errs []error
	for _, r := range rs {
		resp, err := c.exchange(ctx, r, m)
		if err == nil && (resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError) {
			return resp, nil
		}
		if err == nil {
			err = fmt.Errorf("answer code %s", dns.RcodeToString[resp.Rcode])
		}
		errs = append(errs, fmt.Errorf("resolver %v: %w", r, err))
	}
	return nil, errors.Join(errs...)
}

// exchange sends m over UDP and again over TCP if the answer was
// truncated (miekg/dns does not retry by itself).
func (c *Checker) exchange(ctx context.Context, server netip.AddrPort, m *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	r, err := c.exchangeNet(ctx, "udp", server, m)
	if err == nil && r.Truncated {
		r, err = c.exchangeNet(ctx, "tcp", server, m)
	}
	return r, err
}

func (c *Checker) exchangeNet(ctx context.Context, network string, server netip.AddrPort, m *dns.Msg) (*dns.Msg, error) {
	conn, err := c.dialer().DialContext(ctx, network, server.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cl := &dns.Client{Net: network, Timeout: c.timeout()}
	m = m.Copy()
	m.Id = dns.Id()
	r, _, err := cl.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: conn})
	return r, err
}

// FindZone returns the apex of the zone that holds name, e.g.
// "example.com." for "derp.example.com", from the SOA record the
// resolvers return. Users are never asked for it: a subdomain given as the
// zone is the classic "expected 1 zone, got 0" failure.
func (c *Checker) FindZone(ctx context.Context, name string) (string, error) {
	name = strings.ToLower(dns.Fqdn(name))
	for n := name; n != "."; {
		r, err := c.resolve(ctx, n, dns.TypeSOA)
		if err != nil {
			return "", fmt.Errorf("finding the zone of %s: %w", name, err)
		}
		for _, rr := range r.Answer {
			if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, n) {
				return strings.ToLower(soa.Hdr.Name), nil
			}
		}
		for _, rr := range r.Ns {
			if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(strings.ToLower(soa.Hdr.Name), name) {
				return strings.ToLower(soa.Hdr.Name), nil
			}
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			break
		}
		n = n[i:]
	}
	return "", fmt.Errorf("no DNS zone found for %s: is the domain registered and delegated?", strings.TrimSuffix(name, "."))
}

// Nameservers returns the addresses of zone's name servers, from its NS
// records and their glue or A/AAAA records.
func (c *Checker) Nameservers(ctx context.Context, zone string) ([]Server, error) {
	zone = strings.ToLower(dns.Fqdn(zone))
	r, err := c.resolve(ctx, zone, dns.TypeNS)
	if err != nil {
		return nil, fmt.Errorf("looking up the name servers of %s: %w", zone, err)
	}
	glue := map[string][]netip.Addr{}
	for _, rr := range r.Extra {
		if a, ok := rrAddr(rr); ok {
			name := strings.ToLower(rr.Header().Name)
			glue[name] = append(glue[name], a)
		}
	}
	port := c.Port
	if port == 0 {
		port = 53
	}
	var out []Server
	for _, rr := range r.Answer {
		ns, ok := rr.(*dns.NS)
		if !ok || !strings.EqualFold(ns.Hdr.Name, zone) {
			continue
		}
		host := strings.ToLower(ns.Ns)
		addrs := glue[host]
		if len(addrs) == 0 {
			for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
				ar, err := c.resolve(ctx, host, t)
				if err != nil {
					continue
				}
				addrs = append(addrs, addrsOf(ar, host, t)...)
			}
		}
		for _, a := range addrs {
			out = append(out, Server{Name: host, Addr: netip.AddrPortFrom(a, port)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("found no addresses for the name servers of %s", zone)
	}
	slices.SortFunc(out, func(a, b Server) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return a.Addr.Addr().Compare(b.Addr.Addr())
	})
	return slices.Compact(out), nil
}

// zoneAndServers returns the cached zone and servers of name, looking
// them up when missing or expired.
func (c *Checker) zoneAndServers(ctx context.Context, name string) (string, []Server, error) {
	key := strings.ToLower(dns.Fqdn(name))
	c.mu.Lock()
	e, ok := c.cache[key]
	c.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e.zone, e.servers, nil
	}
	zone, err := c.FindZone(ctx, name)
	if err != nil {
		return "", nil, err
	}
	servers, err := c.Nameservers(ctx, zone)
	if err != nil {
		return "", nil, err
	}
	ttl := c.CacheFor
	if ttl == 0 {
		ttl = time.Hour
	}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[string]cached{}
	}
	c.cache[key] = cached{zone, servers, time.Now().Add(ttl)}
	c.mu.Unlock()
	return zone, servers, nil
}

// Forget drops cached zone data, e.g. after the hostname changed.
func (c *Checker) Forget() {
	c.mu.Lock()
	c.cache = nil
	c.mu.Unlock()
}

func addrsOf(r *dns.Msg, name string, qtype uint16) []netip.Addr {
	var out []netip.Addr
	for _, rr := range r.Answer {
		if !strings.EqualFold(rr.Header().Name, name) || rr.Header().Rrtype != qtype {
			continue
		}
		if a, ok := rrAddr(rr); ok {
			out = append(out, a)
		}
	}
	return out
}

// rrAddr returns the address of an A or AAAA record. A record whose
// RDATA holds no address of its family (miekg/dns unpacks an empty RDATA
// as a nil IP) has none: it must not turn into an invalid address that
// is then compared, dialled or written back.
func rrAddr(rr dns.RR) (netip.Addr, bool) {
	switch rr := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(rr.A.To4())
		return a, ok
	case *dns.AAAA:
		if len(rr.AAAA) != net.IPv6len {
			return netip.Addr{}, false
		}
		a, ok := netip.AddrFromSlice(rr.AAAA)
		return a, ok
	}
	return netip.Addr{}, false
}
