package authdns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Answer is what one authoritative server said about one name and type.
type Answer struct {
	Server Server
	Addrs  []netip.Addr // sorted; empty when the name has no such record
	TTL    uint32       // of the first record
	Err    error        // the server did not answer authoritatively
}

// Served is what a name's authoritative servers answer for A and AAAA.
type Served struct {
	Zone string // e.g. "example.com."
	A    []Answer
	AAAA []Answer
}

// ErrCNAME says the name is an alias; the updater manages only A and
// AAAA records and never replaces a CNAME.
var ErrCNAME = errors.New("the name is a CNAME")

// Query asks server for name and qtype with recursion off, over UDP and
// then TCP if the answer was truncated. The answer must be authoritative
// (AA set) with code NOERROR or NXDOMAIN; a lame or refusing server is an
// error.
func (c *Checker) Query(ctx context.Context, server netip.AddrPort, name string, qtype uint16) ([]dns.RR, uint32, error) {
	name = dns.Fqdn(name)
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	r, err := c.exchange(ctx, server, m)
	if err != nil {
		return nil, 0, err
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, 0, fmt.Errorf("answer code %s", dns.RcodeToString[r.Rcode])
	}
	if !r.Authoritative {
		return nil, 0, errors.New("the answer is not authoritative (lame delegation?)")
	}
	var rrs []dns.RR
	var ttl uint32
	for _, rr := range r.Answer {
		if !strings.EqualFold(rr.Header().Name, name) {
			continue
		}
		if rr.Header().Rrtype == dns.TypeCNAME && qtype != dns.TypeCNAME {
			return nil, 0, fmt.Errorf("%w to %s", ErrCNAME, rr.(*dns.CNAME).Target)
		}
		if rr.Header().Rrtype == qtype {
			if len(rrs) == 0 {
				ttl = rr.Header().Ttl
			}
			rrs = append(rrs, rr)
		}
	}
	return rrs, ttl, nil
}

// Served asks every authoritative server of hostname's zone for its A and
// AAAA records (families not asked for are left empty). It fails only
// when no server answered at all; single failures are in the Answers.
func (c *Checker) Served(ctx context.Context, hostname string, v4, v6 bool) (*Served, error) {
	zone, servers, err := c.zoneAndServers(ctx, hostname)
	if err != nil {
		return nil, err
	}
	s := &Served{Zone: zone}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, srv := range servers {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if qt == dns.TypeA && !v4 || qt == dns.TypeAAAA && !v6 {
				continue
			}
			wg.Go(func() {
				rrs, ttl, err := c.Query(ctx, srv.Addr, hostname, qt)
				a := Answer{Server: srv, TTL: ttl, Err: err}
				for _, rr := range rrs {
					if ip, ok := rrAddr(rr); ok {
						a.Addrs = append(a.Addrs, ip)
					}
				}
				slices.SortFunc(a.Addrs, netip.Addr.Compare)
				mu.Lock()
				defer mu.Unlock()
				if qt == dns.TypeA {
					s.A = append(s.A, a)
				} else {
					s.AAAA = append(s.AAAA, a)
				}
			})
		}
	}
	wg.Wait()
	byServer := func(a, b Answer) int { return a.Server.Addr.Addr().Compare(b.Server.Addr.Addr()) }
	slices.SortFunc(s.A, byServer)
	slices.SortFunc(s.AAAA, byServer)
	for _, list := range [][]Answer{s.A, s.AAAA} {
		for _, a := range list {
			if errors.Is(a.Err, ErrCNAME) {
				return nil, fmt.Errorf("%s: %w; point it at this box with A/AAAA records instead", strings.TrimSuffix(dns.Fqdn(hostname), "."), a.Err)
			}
		}
	}
	if answered(s.A) == 0 && answered(s.AAAA) == 0 {
		var errs []error
		for _, a := range append(s.A, s.AAAA...) {
			errs = append(errs, fmt.Errorf("%v: %w", a.Server, a.Err))
		}
		return nil, fmt.Errorf("no authoritative server of %s answered: %w", zone, errors.Join(errs...))
	}
	return s, nil
}

func answered(as []Answer) int {
	n := 0
	for _, a := range as {
		if a.Err == nil {
			n++
		}
	}
	return n
}

// Agreement summarises the answers for one type against a wanted set.
type Agreement struct {
	Answered int          // servers that answered
	Matching int          // ... with exactly the wanted set
	Union    []netip.Addr // every address any server served, sorted
}

// InSync reports whether every server that answered serves exactly want.
func (g Agreement) InSync() bool { return g.Answered > 0 && g.Matching == g.Answered }

// Compare checks answers against want (sorted or not).
func Compare(answers []Answer, want []netip.Addr) Agreement {
	want = slices.Clone(want)
	slices.SortFunc(want, netip.Addr.Compare)
	var g Agreement
	for _, a := range answers {
		if a.Err != nil {
			continue
		}
		g.Answered++
		if slices.Equal(a.Addrs, want) {
			g.Matching++
		}
		g.Union = append(g.Union, a.Addrs...)
	}
	slices.SortFunc(g.Union, netip.Addr.Compare)
	g.Union = slices.Compact(g.Union)
	return g
}
