package portmap

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"
)

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
