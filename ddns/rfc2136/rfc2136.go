// Package rfc2136 changes records with TSIG-signed DNS UPDATE messages
// (RFC 2136, RFC 8945) through github.com/miekg/dns, for people who run
// their own DNS server (BIND, Knot, PowerDNS, ...).
//
// Provider implements the libdns interfaces, so the ACME DNS-01 solver
// can use it to publish and remove its TXT records exactly as ddns uses
// it for A and AAAA records.
package rfc2136

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/homederp/homederp/internal/usermsg"
	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// Dialer opens connections; *net.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Provider sends updates to one primary server.
type Provider struct {
	Server       string // e.g. "ns1.example.com:53" or "192.0.2.53:53"
	Zone         string // e.g. "example.com."; "" = found with FindZone
	KeyName      string // e.g. "homederp."
	KeyAlgorithm string // e.g. "hmac-sha256."
	Secret       string // base64 TSIG secret

	Net     Dialer        // nil = net.Dialer
	Timeout time.Duration // per update; 0 = 10s
	// FindZone finds a hostname's zone when Zone is empty, e.g.
	// (*authdns.Checker).FindZone.
	FindZone func(ctx context.Context, name string) (string, error)

	updates, requests atomic.Int64
}

// Updates returns how many UPDATE messages the provider sent.
func (p *Provider) Updates() int64 { return p.updates.Load() }

// Requests returns how many messages the provider sent to the server:
// updates, the reads before them and key checks.
func (p *Provider) Requests() int64 { return p.requests.Load() }

// ZoneFor returns the configured zone or finds hostname's zone.
func (p *Provider) ZoneFor(ctx context.Context, hostname string) (string, error) {
	if p.Zone != "" {
		z := strings.ToLower(dns.Fqdn(p.Zone))
		if !dns.IsSubDomain(z, strings.ToLower(dns.Fqdn(hostname))) {
			return "", usermsg.Errorf("provider.rfc2136.outside_zone", "{{.Host}} is not inside the configured zone {{.Zone}}: correct the zone, or leave it empty to find it", map[string]any{"Host": hostname, "Zone": z})
		}
		return z, nil
	}
	if p.FindZone == nil {
		return "", errors.New("no zone configured and no way to find it")
	}
	return p.FindZone(ctx, hostname)
}

// toRR converts a libdns record in zone to a miekg/dns RR. A TTL of 0
// becomes 60 s.
func toRR(zone string, r libdns.Record) (dns.RR, error) {
	rr := r.RR()
	name := dns.Fqdn(libdns.AbsoluteName(rr.Name, dns.Fqdn(zone)))
	ttl := uint32(rr.TTL / time.Second)
	if ttl == 0 {
		ttl = 60
	}
	hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: ttl}
	switch rec := r.(type) {
	case libdns.Address:
		ip := rec.IP.Unmap()
		if !ip.IsValid() {
			return nil, fmt.Errorf("record %q has no address", rr.Name)
		}
		if ip.Is4() {
			hdr.Rrtype = dns.TypeA
			return &dns.A{Hdr: hdr, A: ip.AsSlice()}, nil
		}
		hdr.Rrtype = dns.TypeAAAA
		return &dns.AAAA{Hdr: hdr, AAAA: ip.AsSlice()}, nil
	case libdns.TXT:
		hdr.Rrtype = dns.TypeTXT
		txt := rec.Text
		var parts []string
		for len(txt) > 255 {
			parts = append(parts, txt[:255])
			txt = txt[255:]
		}
		return &dns.TXT{Hdr: hdr, Txt: append(parts, txt)}, nil
	}
	out, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", name, ttl, rr.Type, rr.Data))
	if err != nil {
		return nil, fmt.Errorf("record %s %s %q: %w", rr.Name, rr.Type, rr.Data, err)
	}
	if out == nil {
		return nil, fmt.Errorf("record %s %s is empty", rr.Name, rr.Type)
	}
	return out, nil
}

func fromRR(zone string, rr dns.RR) libdns.Record {
	h := rr.Header()
	rel := libdns.RelativeName(h.Name, zone)
	ttl := time.Duration(h.Ttl) * time.Second
	switch rr := rr.(type) {
	case *dns.TXT:
		return libdns.TXT{Name: rel, TTL: ttl, Text: strings.Join(rr.Txt, "")}
	}
	data := strings.TrimPrefix(rr.String(), h.String())
	rec, err := libdns.RR{Name: rel, TTL: ttl, Type: dns.TypeToString[h.Rrtype], Data: data}.Parse()
	if err != nil {
		return libdns.RR{Name: rel, TTL: ttl, Type: dns.TypeToString[h.Rrtype], Data: data}
	}
	return rec
}

// SetRecords sets the one record of every (name, type) in recs, all in
// one UPDATE message, which the server applies atomically: there is no
// moment at which the name has no address.
//
// It touches nothing else. A (name, type) that already has several
// records (say a second A record added by hand) is refused, as the
// Cloudflare provider refuses it, because replacing the set would delete
// the others and homederp never deletes. It reads the current records
// from the server first and makes the update conditional on them (an RFC
// 2136 prerequisite), so a record added in between makes the server
// refuse the update instead of deleting it.
func (p *Provider) SetRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	m := p.newUpdate(zone)
	type key struct {
		name string
		typ  uint16
	}
	seen := map[key]bool{}
	var rrs []dns.RR
	for _, r := range recs {
		rr, err := toRR(zone, r)
		if err != nil {
			return nil, err
		}
		h := rr.Header()
		k := key{strings.ToLower(h.Name), h.Rrtype}
		if seen[k] {
			return nil, fmt.Errorf("two %s records for %s in one call: homederp keeps one record per name and type", dns.TypeToString[h.Rrtype], h.Name)
		}
		seen[k] = true
		cur, err := p.lookup(ctx, h.Name, h.Rrtype)
		if err != nil {
			return nil, err
		}
		set := &dns.ANY{Hdr: dns.RR_Header{Name: h.Name, Rrtype: h.Rrtype, Class: dns.ClassINET}}
		switch len(cur) {
		case 0:
			m.RRsetNotUsed([]dns.RR{set})
		case 1:
			m.Used(cur)
		default:
			return nil, usermsg.Errorf("provider.rfc2136.several", "{{.Name}} has several {{.Type}} records ({{.Data}}); homederp keeps exactly one and never deletes records, so remove the extra ones on the DNS server {{.Server}}",
				map[string]any{"Name": strings.TrimSuffix(h.Name, "."), "Type": dns.TypeToString[h.Rrtype], "Data": rdata(cur), "Server": p.Server})
		}
		m.RemoveRRset([]dns.RR{set})
		rrs = append(rrs, rr)
	}
	m.Insert(rrs)
	if err := p.send(ctx, m); err != nil {
		return nil, err
	}
	return resultOf(zone, rrs), nil
}

// lookup asks the server for name's records of type typ. Every query
// after it that changes them is conditional on this answer.
func (p *Provider) lookup(ctx context.Context, name string, typ uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, typ)
	m.RecursionDesired = false
	r, err := p.exchange(ctx, m)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, usermsg.Errorf("provider.rfc2136.lookup", "the DNS server {{.Server}} answered {{.Rcode}} when asked for the {{.Type}} records of {{.Name}}: check that it is the primary server of the zone and allows this box to query it",
			map[string]any{"Server": p.Server, "Type": dns.TypeToString[typ], "Name": name, "Rcode": dns.RcodeToString[r.Rcode]})
	}
	var out []dns.RR
	for _, rr := range r.Answer {
		if h := rr.Header(); h.Rrtype == typ && strings.EqualFold(h.Name, name) {
			out = append(out, rr)
		}
	}
	return out, nil
}

func rdata(rrs []dns.RR) string {
	var parts []string
	for _, rr := range rrs {
		parts = append(parts, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	return strings.Join(parts, ", ")
}

// AppendRecords adds records without touching existing ones.
func (p *Provider) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	m := p.newUpdate(zone)
	var rrs []dns.RR
	for _, r := range recs {
		rr, err := toRR(zone, r)
		if err != nil {
			return nil, err
		}
		rrs = append(rrs, rr)
	}
	m.Insert(rrs)
	if err := p.send(ctx, m); err != nil {
		return nil, err
	}
	return resultOf(zone, rrs), nil
}

// DeleteRecords removes TXT records that match exactly (ACME challenge
// clean-up). Other types and TXT records without a value are refused:
// homederp never deletes address records.
func (p *Provider) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	m := p.newUpdate(zone)
	var rrs []dns.RR
	for _, r := range recs {
		rr := r.RR()
		if rr.Type != "TXT" || rr.Data == "" {
			return nil, fmt.Errorf("refusing to delete %s record %q: homederp deletes only the TXT records it created", rr.Type, rr.Name)
		}
		d, err := toRR(zone, r)
		if err != nil {
			return nil, err
		}
		rrs = append(rrs, d)
	}
	m.Remove(rrs)
	if err := p.send(ctx, m); err != nil {
		return nil, err
	}
	return resultOf(zone, rrs), nil
}

func resultOf(zone string, rrs []dns.RR) []libdns.Record {
	out := make([]libdns.Record, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, fromRR(zone, rr))
	}
	return out
}

func (p *Provider) newUpdate(zone string) *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	return m
}

// CheckKey proves the TSIG key without changing the zone: it sends a
// signed SOA query for hostname's zone, which the server answers with a
// signed response only if it knows the key and the secret matches. It does
// not prove that the key may update the zone (only an update can). The web
// UI calls it when the user saves the key.
func (p *Provider) CheckKey(ctx context.Context, hostname string) error {
	zone, err := p.ZoneFor(ctx, hostname)
	if err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	return p.send(ctx, m)
}

// send sends m and checks the answer's code.
func (p *Provider) send(ctx context.Context, m *dns.Msg) error {
	r, err := p.exchange(ctx, m)
	if err != nil {
		return err
	}
	keyName := strings.ToLower(dns.Fqdn(p.KeyName))
	switch r.Rcode {
	case dns.RcodeSuccess:
		return nil
	case dns.RcodeNotAuth:
		return &RcodeError{r.Rcode, fmt.Sprintf("%s does not accept the TSIG key %s: the key name, algorithm or secret is wrong, or this box's clock is off (DNS answer NOTAUTH)", p.Server, keyName)}
	case dns.RcodeRefused:
		return &RcodeError{r.Rcode, fmt.Sprintf("%s refused the update: allow the key %s to update the zone %s (BIND: update-policy or allow-update) (DNS answer REFUSED)", p.Server, keyName, m.Question[0].Name)}
	case dns.RcodeNotZone:
		return &RcodeError{r.Rcode, fmt.Sprintf("%s says the record is outside the zone %s (DNS answer NOTZONE)", p.Server, m.Question[0].Name)}
	case dns.RcodeNXRrset, dns.RcodeYXRrset:
		return &RcodeError{r.Rcode, fmt.Sprintf("the records at %s changed while homederp was updating them, so the update was not applied (DNS answer %s); the next check looks again", p.Server, dns.RcodeToString[r.Rcode])}
	}
	return &RcodeError{r.Rcode, fmt.Sprintf("%s rejected the update: DNS answer %s", p.Server, dns.RcodeToString[r.Rcode])}
}

// RcodeError is an answer of the DNS server that refuses the request, e.g.
// NOTAUTH for a key it does not accept. Its text is a sentence for the
// user.
type RcodeError struct {
	Rcode int // e.g. dns.RcodeRefused
	Msg   string
}

func (e *RcodeError) Error() string { return e.Msg }

// exchange signs m, sends it over TCP and returns the answer, whose TSIG
// signature miekg/dns verifies.
func (p *Provider) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	keyName := strings.ToLower(dns.Fqdn(p.KeyName))
	algo := strings.ToLower(dns.Fqdn(p.KeyAlgorithm))
	if algo == "." {
		algo = dns.HmacSHA256
	}
	m.SetTsig(keyName, algo, 300, time.Now().Unix())

	var d Dialer = p.Net
	if d == nil {
		d = &net.Dialer{}
	}
	conn, err := d.DialContext(ctx, "tcp", p.Server)
	if err != nil {
		return nil, usermsg.Wrapf(err, "provider.rfc2136.connect", "cannot connect to the DNS server {{.Server}} over TCP: {{.Err}}", map[string]any{"Server": p.Server})
	}
	defer conn.Close()
	p.requests.Add(1)
	if m.Opcode == dns.OpcodeUpdate {
		p.updates.Add(1)
	}
	cl := &dns.Client{Net: "tcp", Timeout: timeout, TsigSecret: map[string]string{keyName: p.Secret}}
	r, _, err := cl.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: conn})
	if err != nil {
		if errors.Is(err, dns.ErrAuth) || errors.Is(err, dns.ErrTime) {
			return nil, usermsg.Wrapf(err, "provider.rfc2136.key", "{{.Server}} does not accept the TSIG key {{.Key}}: the key name, algorithm or secret is wrong, or this box's clock is off ({{.Err}})", map[string]any{"Server": p.Server, "Key": keyName})
		}
		if errors.Is(err, dns.ErrSig) || errors.Is(err, dns.ErrSecret) || errors.Is(err, dns.ErrKeyAlg) {
			return nil, usermsg.Wrapf(err, "provider.rfc2136.unsigned", "the answer from {{.Server}} is not signed with the TSIG key {{.Key}}: check the key name, algorithm and secret ({{.Err}})", map[string]any{"Server": p.Server, "Key": keyName})
		}
		if m.Opcode == dns.OpcodeUpdate {
			return nil, usermsg.Wrapf(err, "provider.rfc2136.update", "the DNS server {{.Server}} did not answer the update: {{.Err}}", map[string]any{"Server": p.Server})
		}
		return nil, usermsg.Wrapf(err, "provider.rfc2136.query", "the DNS server {{.Server}} did not answer the query: {{.Err}}", map[string]any{"Server": p.Server})
	}
	return r, nil
}

// Interface guards.
var (
	_ libdns.RecordAppender = (*Provider)(nil)
	_ libdns.RecordSetter   = (*Provider)(nil)
	_ libdns.RecordDeleter  = (*Provider)(nil)
)
