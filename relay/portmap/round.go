package portmap

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// A round's work on each port: what it removes, renews and asks for,
// by which protocol, and what each protocol answered.

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
				return d.upnpClosePinhole(r.ctx, h.Port.Proto, h.Port.Port, h.Internal.Addr())
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
				id, err := d.upnpPinhole(r.ctx, w.Proto, w.Port.Port, r.addr6, lease)
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
