package detect

import (
	"context"
	"net/netip"
)

// detect6 finds the box's public IPv6 address: its own stable global
// address, confirmed by STUN servers that see exactly that address when
// asked from it (so no NAT66 or NPTv6 rewrites it on the way).
func (d *Detector) detect6(ctx context.Context) Family {
	var f Family
	list := d.Addrs
	if list == nil {
		list = SystemAddrs
	}
	addrs, err := list()
	if err != nil {
		f.problem("detect.no_ipv6_list", "Could not list this box's IPv6 addresses: {{.Err}}", map[string]any{"Err": err.Error()})
		return f
	}
	stable, tempOnly := StableIPv6(addrs)
	f.Stable = stable
	if len(stable) == 0 {
		f.State = None
		if tempOnly {
			f.problem("detect.temporary_ipv6", "This box has only temporary (privacy) IPv6 addresses, which change every day; they are never published. Give it a stable address (SLAAC without privacy extensions, or a DHCPv6 reservation).", nil)
		} else {
			f.problem("detect.no_ipv6", "This box has no global IPv6 address.", nil)
		}
		return f
	}
	servers, obs := d.stunServers(ctx, "6")
	f.Observations = append(f.Observations, obs...)
	if len(servers) == 0 {
		f.problem("detect.no_ipv6_stun", "No IPv6 STUN server is configured to confirm the box's IPv6 address from outside.", nil)
		return f
	}
	// Try the stable addresses in order; the first one that the STUN
	// servers see unchanged is the box's public IPv6 address.
	for _, cand := range stable {
		pc, err := d.net().ListenPacket(ctx, "udp6", netip.AddrPortFrom(cand, 0).String())
		if err != nil {
			f.Observations = append(f.Observations, Observation{Source: "bind " + cand.String(), Err: err.Error()})
			continue
		}
		answers := QuerySTUN(ctx, pc, servers, d.timeout())
		pc.Close()
		var ok, bad int
		for _, a := range answers {
			o := Observation{Source: "stun " + a.Server.String() + " from " + cand.String()}
			if a.Err != nil {
				o.Err = a.Err.Error()
			} else {
				o.Addr, o.Port = a.Mapped.Addr(), a.Mapped.Port()
				if a.Mapped.Addr() == cand {
					ok++
				} else {
					bad++
				}
			}
			f.Observations = append(f.Observations, o)
		}
		switch {
		case bad > 0:
			f.problem("detect.nat66", "STUN servers see this box's IPv6 address {{.Addr}} as a different address ({{.Seen}}): the router translates IPv6 (NAT66/NPTv6), so the AAAA record is not updated.", map[string]any{"Addr": cand.String(), "Seen": summarize(f.Observations)})
		case ok > 0:
			f.State, f.Addr, f.Problem = Known, cand, ""
			return f
		default:
			if f.Problem == "" {
				f.problem("detect.ipv6_unconfirmed", "No STUN server answered over IPv6 from {{.Addr}}, so the address could not be confirmed from outside.", map[string]any{"Addr": cand.String()})
			}
		}
	}
	return f
}
