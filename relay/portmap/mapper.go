package portmap

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Mapper holds the router's port mappings for the box. Run it in a
// goroutine; Set says what it should hold; Status says what it has.
type Mapper struct {
	o         Options
	hc        *http.Client // UPnP's SOAP and description requests
	httpFails atomic.Int64 // hc's requests that got no HTTP answer

	wake chan struct{}

	mu     sync.Mutex // guards cfg and status
	cfg    Config
	status Status

	// Run's goroutine only:
	st       state
	epochs   map[string]epochNote
	failures int
	igdCache [2]igdCached // IPv4, IPv6
}

// epochNote is the last epoch a PCP/NAT-PMP server reported, and when.
type epochNote struct {
	epoch uint32
	at    time.Time
}

// New loads the mapper's state (the PCP nonce and what it holds) from
// o.StateDir. A corrupt state file is an error.
func New(o Options) (*Mapper, error) {
	if o.Net == nil {
		return nil, errors.New("portmap: no Net")
	}
	o.fill()
	st, err := loadState(o.StateDir)
	if err != nil {
		return nil, err
	}
	m := &Mapper{
		o:      o,
		wake:   make(chan struct{}, 1),
		st:     st,
		epochs: map[string]epochNote{},
	}
	tr := &http.Transport{DialContext: o.Net.DialContext, DisableKeepAlives: true, ResponseHeaderTimeout: 5 * time.Second}
	m.hc = &http.Client{Transport: failCounter{tr, &m.httpFails}, Timeout: 5 * time.Second}
	return m, nil
}

// failCounter counts the requests that got no HTTP answer.
type failCounter struct {
	http.RoundTripper
	fails *atomic.Int64
}

func (f failCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.RoundTripper.RoundTrip(req)
	if err != nil {
		f.fails.Add(1)
	}
	return resp, err
}

// Set changes what the mapper holds. Run applies it at once: new ports
// are asked for and mappings no longer wanted are removed.
func (m *Mapper) Set(c Config) {
	c.Ports = slices.Clone(c.Ports)
	m.mu.Lock()
	m.cfg = c
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Status returns the latest round's result.
func (m *Mapper) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status
	s.Answers = slices.Clone(s.Answers)
	s.Mappings = slices.Clone(s.Mappings)
	return s
}

// Run keeps the mappings until ctx ends. It does not remove them then:
// the box is restarting (an update, a crash) and asks again in a moment;
// a lease the box never renews runs out by itself.
func (m *Mapper) Run(ctx context.Context) {
	for ctx.Err() == nil {
		next := m.round(ctx)
		d := max(next.Sub(m.o.Clock.Now()), 0)
		tm, ch := m.o.Clock.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-m.wake:
		case <-ch:
		}
		tm.Stop()
	}
}

// want is one port in one address family.
type want struct {
	Port
	ipv6 bool
}

func (w want) key() heldKey { return heldKey{w.Proto, w.Port.Port, w.ipv6} }

// round is one pass: remove what is no longer wanted, ask for what is
// missing or due, check the hairpin, publish the status. It returns when
// the next pass is due.
type round struct {
	m   *Mapper
	ctx context.Context
	now time.Time
	cfg Config

	gw, lan netip.Addr // the router and the box on the LAN; invalid without a gateway
	gw6     netip.Addr
	addr6   netip.Addr // the box's global IPv6 address; invalid if none

	answers map[string]*Answer
	order   []string        // answer labels in the order they were first used
	dead    map[string]bool // protocols that did not answer this round
	igds    [2]igdFind      // IPv4, IPv6
	restart map[string]bool // servers whose epoch shows a restart
	results map[heldKey]Mapping
}

func (m *Mapper) round(ctx context.Context) time.Time {
	m.mu.Lock()
	cfg := m.cfg
	m.mu.Unlock()
	r := &round{m: m, ctx: ctx, now: m.o.Clock.Now(), cfg: cfg,
		answers: map[string]*Answer{}, dead: map[string]bool{}, restart: map[string]bool{}, results: map[heldKey]Mapping{}}
	var wants []want
	if cfg.Enabled || len(m.st.Held) > 0 {
		// Switched off, the routers are still needed to remove what
		// the box holds.
		if gw, ok := m.o.Gateway(); ok {
			r.gw = gw
			r.lan = r.localAddr(gw)
		}
		if m.o.Addr6 != nil {
			if a, ok := m.o.Addr6(); ok {
				r.addr6 = a
				r.gw6, _ = m.o.Gateway6()
			}
		}
	}
	if cfg.Enabled {
		for _, p := range cfg.Ports {
			wants = append(wants, want{Port: p})
		}
		if r.addr6.IsValid() {
			for _, p := range cfg.Ports {
				wants = append(wants, want{Port: p, ipv6: true})
			}
		}
	}
	before := len(m.st.Held)
	changed := r.releaseUnwanted(wants)
	for _, w := range wants {
		if r.ensure(w) {
			changed = true
		}
	}
	if len(r.restart) > 0 {
		// A router that restarted lost every mapping, not only the one
		// that told: ask again for the others it held.
		for _, w := range wants {
			if h, ok := m.heldFor(w.key()); ok && r.restart[h.Server] && h.Granted.Before(r.now) {
				m.dropHeld(w.key())
				r.ensure(w)
				changed = true
			}
		}
	}
	if changed || len(m.st.Held) != before {
		if err := saveState(m.o.StateDir, m.st); err != nil {
			m.o.Logf("portmap: %v", err)
		}
	}
	st := r.status(wants)
	st.Hairpin = r.hairpin(st)
	if cfg.Enabled {
		// A round that renewed nothing asked nothing: what the
		// protocols said last time still stands.
		m.mu.Lock()
		prev := m.status.Answers
		m.mu.Unlock()
		st.Answers = mergeAnswers(prev, st.Answers)
	}

	next := r.now.Add(m.o.RetryMax)
	for _, h := range m.st.Held {
		if h.Unwanted.IsZero() && h.renewAt().Before(next) {
			next = h.renewAt()
		}
	}
	failed := slices.ContainsFunc(st.Mappings, func(mp Mapping) bool { return !mp.OK }) ||
		slices.ContainsFunc(m.st.Held, func(h held) bool { return !h.Unwanted.IsZero() })
	if failed {
		m.failures++
		backoff := m.o.RetryMin << min(m.failures-1, 10)
		next = minTime(next, r.now.Add(min(backoff, m.o.RetryMax)))
	} else {
		m.failures = 0
	}
	st.LastRound, st.NextRound = r.now, next

	m.mu.Lock()
	m.status = st
	m.mu.Unlock()
	return next
}

// mergeAnswers replaces the old answers by newer ones of the same
// protocol, keeping the order.
func mergeAnswers(old, new []Answer) []Answer {
	out := slices.Clone(old)
	for _, a := range new {
		if i := slices.IndexFunc(out, func(o Answer) bool { return o.Protocol == a.Protocol }); i >= 0 {
			out[i] = a
		} else {
			out = append(out, a)
		}
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (m *Mapper) heldFor(k heldKey) (held, bool) {
	for _, h := range m.st.Held {
		if h.key() == k && h.Unwanted.IsZero() {
			return h, true
		}
	}
	return held{}, false
}

func (m *Mapper) dropHeld(k heldKey) {
	m.st.Held = slices.DeleteFunc(m.st.Held, func(h held) bool { return h.key() == k && h.Unwanted.IsZero() })
}

// noteEpoch checks a PCP/NAT-PMP server's epoch (its seconds since it
// started) against the last one: an epoch that fell behind the time that
// passed means the router restarted and forgot every mapping (RFC 6887
// section 8.5, RFC 6886 section 3.6).
func (r *round) noteEpoch(server string, epoch uint32) {
	m := r.m
	last, ok := m.epochs[server]
	m.epochs[server] = epochNote{epoch, r.now}
	if !ok {
		return
	}
	elapsed := uint32(r.now.Sub(last.at) / time.Second)
	if int64(epoch) < int64(last.epoch)+int64(elapsed*7/8)-2 {
		m.o.Logf("portmap: %s restarted (epoch %d after %d): asking again for every mapping", server, epoch, last.epoch)
		r.restart[server] = true
	}
}

// localAddr is the box's address on the way to gw.
func (r *round) localAddr(gw netip.Addr) netip.Addr {
	c, self, err := dialPxP(r.ctx, r.m.o.Net, netip.AddrPortFrom(gw, ssdpPort))
	if err != nil {
		return netip.Addr{}
	}
	c.Close()
	return self
}

func mappingOf(h held) Mapping {
	mp := Mapping{Port: h.Port, IPv6: h.IPv6, OK: true, Via: h.Via, External: h.External.String(),
		Internal: h.Internal.String(), Lifetime: lifetimeText(h.Lifetime), Expires: h.expires(), RenewAt: h.renewAt()}
	return mp
}

// lifetimeText writes a lease for people: "2h", "90m", "45s", "permanent".
func lifetimeText(d time.Duration) string {
	switch {
	case d == 0:
		return "permanent"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return d.Round(time.Second).String()
}
