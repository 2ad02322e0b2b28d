package portmap

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
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

// releaseUnwanted removes from the router what the box holds but no
// longer wants: a port no longer configured, the feature switched off,
// a mapping to an old LAN or IPv6 address. A removal the router does not
// answer is retried in later rounds until the mapping would have expired
// anyway (a day for a permanent one).
func (r *round) releaseUnwanted(wants []want) (changed bool) {
	m := r.m
	var keep []held
	for _, h := range m.st.Held {
		wanted := h.Unwanted.IsZero() && slices.ContainsFunc(wants, func(w want) bool { return w.key() == h.key() })
		if wanted && h.IPv6 && h.Internal.Addr() != r.addr6 {
			wanted = false
		}
		if wanted && !h.IPv6 && h.Internal.Addr() != r.lan {
			wanted = false
		}
		if wanted {
			keep = append(keep, h)
			continue
		}
		changed = true
		err := r.release(h)
		if err == nil {
			m.o.Logf("portmap: removed %s (%s via %s)", h.describe(), h.External, h.Via)
			continue
		}
		if h.Unwanted.IsZero() {
			h.Unwanted = r.now
			m.o.Logf("portmap: removing %s via %s: %v; trying again later", h.describe(), h.Via, err)
		}
		limit := h.expires()
		if limit.IsZero() {
			limit = h.Unwanted.Add(24 * time.Hour)
		}
		if r.now.Before(limit) {
			keep = append(keep, h)
		}
	}
	m.st.Held = keep
	return changed
}

func (h held) describe() string {
	if h.IPv6 {
		return "the IPv6 pinhole for " + h.Port.Label()
	}
	return h.Port.Label()
}

// release deletes h on the router, by the protocol that created it.
func (r *round) release(h held) error {
	m := r.m
	switch h.Via {
	case PCP, NATPMP:
		server, err := netip.ParseAddrPort(h.Server)
		if err != nil {
			return err
		}
		if h.Via == PCP {
			_, err = pcpMap(r.ctx, m.o.Net, server, m.st.Nonce, h.Port.Proto, h.Port.Port, 0, m.o.Timeout)
		} else {
			_, err = natpmpMap(r.ctx, m.o.Net, server, h.Port.Proto, h.Port.Port, 0, m.o.Timeout)
		}
		return err
	case UPnP:
		return r.withIGD(h.IPv6, func(d *igd) error {
			if h.IPv6 {
				return d.upnpClosePinhole(r.ctx, h.PinholeID)
			}
			return d.upnpUnmap(r.ctx, h.Port.Proto, h.Port.Port, h.Internal.Addr(), h.Description)
		})
	}
	return fmt.Errorf("unknown protocol %q", h.Via)
}

// ensure makes sure w is mapped, renewing it if it is due, and records
// the result for the status. It reports whether what the box holds
// changed.
func (r *round) ensure(w want) (changed bool) {
	m := r.m
	prev, had := m.heldFor(w.key())
	if had && r.now.Before(prev.renewAt()) {
		r.results[w.key()] = mappingOf(prev)
		return false
	}
	h, res := r.obtain(w, prev, had)
	if res.OK && h.Via != "" {
		if !had || prev.Via != h.Via || prev.External != h.External {
			if h.IPv6 {
				m.o.Logf("portmap: opened the IPv6 pinhole for %s to %s via %s for %s", h.Port.Label(), h.External, h.Via, lifetimeText(h.Lifetime))
			} else {
				m.o.Logf("portmap: %s forwarded from %s via %s for %s", h.Port.Label(), h.External, h.Via, lifetimeText(h.Lifetime))
			}
		}
		m.dropHeld(w.key())
		m.st.Held = append(m.st.Held, h)
		r.results[w.key()] = mappingOf(h)
		return true
	}
	r.results[w.key()] = res
	if had {
		// The renewal failed. The mapping stands until it expires;
		// after that it is gone.
		if exp := prev.expires(); !exp.IsZero() && !r.now.Before(exp) {
			m.o.Logf("portmap: %s lapsed: %s", prev.describe(), res.Error)
			m.dropHeld(w.key())
			return true
		}
		res = mappingOf(prev)
		res.Error = "renewal failed: " + r.results[w.key()].Error
		r.results[w.key()] = res
	}
	return false
}

// obtain asks the router for w, first by the protocol that holds it
// now, then in the configured order.
func (r *round) obtain(w want, prev held, had bool) (held, Mapping) {
	m := r.m
	order := r.protocols(w.ipv6)
	if had {
		if i := slices.Index(order, prev.Via); i > 0 {
			order = append([]string{prev.Via}, slices.Delete(slices.Clone(order), i, i+1)...)
		}
	}
	res := Mapping{Port: w.Port, IPv6: w.ipv6}
	switch {
	case w.ipv6 && !r.gw6.IsValid() && !slices.Contains(order, UPnP):
		res.Error = "the box has no IPv6 default router to ask"
		return held{}, res
	case !w.ipv6 && !r.gw.IsValid():
		res.Error = "the box has no IPv4 default gateway, so there is no router to ask"
		return held{}, res
	}
	var errs []string
	for _, proto := range order {
		label := answerLabel(proto, w.ipv6)
		if r.dead[label] {
			continue
		}
		h, err := r.try(proto, w, prev, had && prev.Via == proto)
		var foreign errForeign
		switch {
		case err == nil:
			r.answer(label, h.Server, true, "forwarded "+w.Port.Label())
			return h, Mapping{OK: true}
		case errors.Is(err, errFirewallOff):
			r.answer(label, r.igdLocation(true), true, err.Error())
			res.OK, res.Via, res.External = true, UPnP+" (IPv6 firewall off)", netip.AddrPortFrom(r.addr6, w.Port.Port).String()
			return held{}, res
		case errors.As(err, &foreign) && foreign.client == r.lan.String():
			// Forwarded to the box already, by something else: the
			// port is reachable; the box leaves it alone.
			r.answer(label, r.igdLocation(false), true, w.Port.Label()+": "+err.Error())
			res.OK, res.Foreign, res.Via = true, true, UPnP
			if d := r.igds[0].d; d != nil && d.external.IsValid() {
				res.External = netip.AddrPortFrom(d.external, w.Port.Port).String()
			}
			res.Error = err.Error()
			return held{}, res
		}
		var na errNoAnswer
		if errors.As(err, &na) || errors.Is(err, errPMPOnly) || errors.Is(err, errNoIPv6Control) || errors.Is(err, errNoIGD) {
			r.dead[label] = true
		}
		r.answer(label, r.serverFor(proto, w.ipv6), false, w.Port.Label()+": "+err.Error())
		errs = append(errs, label+": "+err.Error())
		m.o.Logf("portmap: %s via %s: %v", w.Port.Label(), label, err)
	}
	if len(errs) == 0 {
		res.Error = "no protocol left to try"
	} else {
		res.Error = strings.Join(errs, "; ")
	}
	return held{}, res
}

var errNoIGD = errors.New("no Internet gateway device")

// protocols are the ones to try for a family: over IPv6 only PCP and
// UPnP's firewall control can open pinholes.
func (r *round) protocols(ipv6 bool) []string {
	var out []string
	for _, p := range r.m.o.Protocols {
		if ipv6 && p == NATPMP {
			continue
		}
		out = append(out, p)
	}
	return out
}

func answerLabel(proto string, ipv6 bool) string {
	if !ipv6 {
		return proto
	}
	if proto == UPnP {
		return "UPnP IPv6 firewall control"
	}
	return proto + " over IPv6"
}

func (r *round) serverFor(proto string, ipv6 bool) string {
	switch {
	case proto == UPnP:
		return r.igdLocation(ipv6)
	case ipv6:
		return netip.AddrPortFrom(r.gw6, PxPPort).String()
	}
	return netip.AddrPortFrom(r.gw, PxPPort).String()
}

func (r *round) igdLocation(ipv6 bool) string {
	if f := r.igds[b2i(ipv6)]; f.d != nil {
		return f.d.location
	}
	if ipv6 {
		return netip.AddrPortFrom(r.gw6, ssdpPort).String()
	}
	return netip.AddrPortFrom(r.gw, ssdpPort).String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// answer records what a protocol said; the first failure or the
// successes of a round are kept, joined.
func (r *round) answer(label, server string, ok bool, text string) {
	a, seen := r.answers[label]
	if !seen {
		a = &Answer{Protocol: label, Server: server, OK: ok, Result: text}
		r.answers[label] = a
		r.order = append(r.order, label)
		return
	}
	if server != "" {
		a.Server = server
	}
	if ok && !a.OK {
		a.OK, a.Result = true, text
		return
	}
	if ok == a.OK && !strings.Contains(a.Result, text) {
		a.Result += "; " + text
	}
}

// try asks one protocol for w.
func (r *round) try(proto string, w want, prev held, renew bool) (held, error) {
	m := r.m
	lease := m.o.Lease
	switch proto {
	case PCP, NATPMP:
		server := netip.AddrPortFrom(r.gw, PxPPort)
		if w.ipv6 {
			if !r.gw6.IsValid() {
				return held{}, errors.New("the box has no IPv6 default router to ask")
			}
			server = netip.AddrPortFrom(r.gw6, PxPPort)
		}
		if !w.ipv6 && !renew {
			// Before a new mapping: is the port forwarded by
			// someone else, as far as UPnP tells? (Without UPnP, or
			// with a UPnP that fails, there is nothing to go by.)
			err := r.withIGD(false, func(d *igd) error {
				if len(d.wan) == 0 {
					return nil
				}
				return d.checkFree(r.ctx, w.Proto, w.Port.Port, r.lan, r.oursFor(w.Port))
			})
			var foreign errForeign
			if errors.As(err, &foreign) {
				return held{}, err
			}
		}
		var g pxpGrant
		var err error
		if proto == PCP && w.ipv6 && renew {
			// miniupnpd (2.3.1, as OpenWrt ships it) loses a
			// pinhole's nonce when a MAP renews it, and then refuses
			// to delete it (NOT_AUTHORIZED) until it lapses. Renewing
			// as delete-and-create keeps it removable; the pinhole is
			// closed for the round trip in between.
			pcpMap(r.ctx, m.o.Net, server, m.st.Nonce, w.Proto, w.Port.Port, 0, m.o.Timeout)
		}
		if proto == PCP {
			g, err = pcpMap(r.ctx, m.o.Net, server, m.st.Nonce, w.Proto, w.Port.Port, lease, m.o.Timeout)
		} else {
			g, err = natpmpMap(r.ctx, m.o.Net, server, w.Proto, w.Port.Port, lease, m.o.Timeout)
		}
		if err != nil {
			return held{}, err
		}
		r.noteEpoch(server.String(), g.epoch)
		h := held{Port: w.Port, IPv6: w.ipv6, Via: proto, Server: server.String(), Internal: g.internal,
			External: g.external, Granted: r.now, Lifetime: g.lifetime, Epoch: g.epoch}
		switch {
		case g.lifetime == 0:
			return held{}, errors.New("the router granted a lifetime of 0 (no mapping)")
		case w.ipv6 && g.external.Addr() != r.addr6 && g.external.Addr().IsValid() && !g.external.Addr().IsUnspecified():
			r.release(h)
			return held{}, fmt.Errorf("the router offered %v, which is not the box's own address (NPTv6?)", g.external)
		case g.external.Port() != w.Port.Port:
			// The router gave another port: useless, since the DERP
			// map announces this one. The box made it, so it removes it.
			r.release(h)
			return held{}, fmt.Errorf("the router offered external port %d instead (port %d is taken on the router by something else)", g.external.Port(), w.Port.Port)
		}
		if w.ipv6 {
			h.External = netip.AddrPortFrom(r.addr6, w.Port.Port)
		}
		return h, nil
	case UPnP:
		var h held
		err := r.withIGD(w.ipv6, func(d *igd) error {
			desc := upnpDescription(w.Port)
			h = held{Port: w.Port, IPv6: w.ipv6, Via: UPnP, Server: d.location, Granted: r.now, Description: desc}
			if w.ipv6 {
				id := uint16(0)
				if renew {
					id = prev.PinholeID
				}
				id, err := d.upnpPinhole(r.ctx, w.Proto, w.Port.Port, r.addr6, id, lease)
				if err != nil {
					return err
				}
				h.PinholeID, h.Lifetime = id, lease
				h.Internal = netip.AddrPortFrom(r.addr6, w.Port.Port)
				h.External = h.Internal
				return nil
			}
			if !r.lan.IsValid() {
				return errors.New("could not tell the box's LAN address")
			}
			granted, err := d.upnpMap(r.ctx, w.Proto, w.Port.Port, r.lan, desc, lease, r.oursFor(w.Port))
			if err != nil {
				return err
			}
			h.Lifetime = granted
			h.Internal = netip.AddrPortFrom(r.lan, w.Port.Port)
			h.External = netip.AddrPortFrom(d.external, w.Port.Port)
			return nil
		})
		if err != nil {
			return held{}, err
		}
		return h, nil
	}
	return held{}, fmt.Errorf("unknown protocol %q", proto)
}

// igdFind is one round's search for the IGD in one family.
type igdFind struct {
	d      *igd
	err    error
	tried  bool
	cached bool // d is from an earlier round
}

// igdCached is the IGD an earlier round found, on gateway gw at at.
type igdCached struct {
	d  *igd
	gw netip.Addr
	at time.Time
}

// upnpDescription names the box's UPnP mapping of p on the router.
func upnpDescription(p Port) string { return "homederp " + p.What + " (" + p.Label() + ")" }

// oursFor says which descriptions of a mapping of p on the router the
// box's own requests leave: its UPnP description, and what miniupnpd
// writes for a PCP request with the box's nonce or a NAT-PMP request
// (which comes from the box itself, as secure mode ensures).
func (r *round) oursFor(p Port) func(string) bool {
	return func(desc string) bool {
		return desc == upnpDescription(p) || desc == "PCP MAP "+hex.EncodeToString(r.m.st.Nonce[:]) ||
			desc == fmt.Sprintf("NAT-PMP %d %s", p.Port, p.Proto)
	}
}

// findIGD finds the router's IGD, once per round and family. The one an
// earlier round found is reused for RetryMax (routers keep their
// description where it is; tailscale's portmapper trusts it for 10
// minutes). For pinholes it is searched over IPv6 (miniupnpd, in secure
// mode, opens a pinhole only for the address the request comes from); a
// router that does not answer SSDP over IPv6 is asked over IPv4.
func (r *round) findIGD(ipv6 bool) (*igd, error) {
	i := b2i(ipv6)
	f := &r.igds[i]
	if f.tried {
		return f.d, f.err
	}
	f.tried = true
	gw := r.gw
	if ipv6 && r.gw6.IsValid() {
		gw = r.gw6
	}
	if !gw.IsValid() {
		f.err = fmt.Errorf("%w: the box has no default gateway to search for one", errNoIGD)
		return nil, f.err
	}
	if c := r.m.igdCache[i]; c.d != nil && c.gw == gw && r.now.Sub(c.at) < r.m.o.RetryMax {
		f.d, f.cached = c.d, true
		return f.d, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, 3*r.m.o.Timeout+10*time.Second)
	defer cancel()
	f.d, f.err = discoverIGD(ctx, r.m.o.Net, r.m.hc, gw, r.m.o.Timeout)
	if f.err != nil && ipv6 && gw != r.gw {
		if d, err := r.findIGD(false); err == nil {
			f.d, f.err = d, nil
		}
	}
	if f.err != nil {
		f.err = fmt.Errorf("%w: %v", errNoIGD, f.err)
		return nil, f.err
	}
	r.m.igdCache[i] = igdCached{f.d, gw, r.now}
	return f.d, nil
}

// withIGD runs op on the router's IGD. If op fails without an answer
// from a reused IGD (the router restarted and serves on a new port), the
// IGD is searched for again and op tried once more.
func (r *round) withIGD(ipv6 bool, op func(*igd) error) error {
	d, err := r.findIGD(ipv6)
	if err != nil {
		return err
	}
	// goupnp flattens HTTP errors into text, so the HTTP client counts
	// its failures instead.
	before := r.m.httpFails.Load()
	err = op(d)
	if i := b2i(ipv6); err != nil && r.igds[i].cached && r.m.httpFails.Load() > before {
		r.m.igdCache[i], r.igds[i] = igdCached{}, igdFind{}
		if d, err = r.findIGD(ipv6); err != nil {
			return err
		}
		err = op(d)
	}
	return err
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
