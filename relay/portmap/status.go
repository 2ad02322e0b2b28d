package portmap

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/homederp/homederp/ddns/ipclass"
	"github.com/homederp/homederp/internal/usermsg"
)

// Status is what the web UI shows about the router. It is a snapshot.
type Status struct {
	Enabled bool   `json:"enabled"`
	Gateway string `json:"gateway,omitempty"`  // the router asked, e.g. "192.168.1.1"
	LANAddr string `json:"lan_addr,omitempty"` // the box as the router sees it, e.g. "192.168.1.10"
	// External is the router's WAN address as the router reports it;
	// behind a second NAT or CGNAT it is not public (ExternalProblem).
	External        netip.Addr `json:"external,omitzero"`
	ExternalProblem string     `json:"external_problem,omitempty"`

	// Answers says, for each protocol tried in the last round, what the
	// router answered.
	Answers []Answer `json:"answers"`
	// Mappings has one entry per wanted port and address family.
	Mappings []Mapping `json:"mappings"`
	// IPv6 says in a sentence whether the box's IPv6 address is open to
	// the Internet through pinholes, or what the user must do.
	IPv6 string `json:"ipv6,omitempty"`
	// Hairpin is the box dialling its own public address and DERP port
	// through the router. Many routers do not loop such connections
	// back, so a failure does not mean the port is closed.
	Hairpin *Hairpin `json:"hairpin,omitempty"`

	// Problem sums up, in plain words, why not every wanted port is
	// mapped; "" when they all are (or when the feature is off).
	Problem   string    `json:"problem,omitempty"`
	LastRound time.Time `json:"last_round,omitzero"`
	NextRound time.Time `json:"next_round,omitzero"`

	// Texts are the sentences above, to be translated.
	Texts Texts `json:"-"`
}

// AllMapped reports whether every wanted IPv4 port is forwarded by the
// router (by the box's own mapping or by an existing forward).
func (s Status) AllMapped() bool {
	n := 0
	for _, m := range s.Mappings {
		if m.IPv6 {
			continue
		}
		if !m.OK {
			return false
		}
		n++
	}
	return n > 0
}

// Answer is what one protocol said in the last round.
type Answer struct {
	Protocol string `json:"protocol"` // e.g. "PCP", "UPnP-IGD", "PCP over IPv6"
	Server   string `json:"server,omitempty"`
	Result   string `json:"result"` // e.g. "mapped tcp 12345, udp 3478", "no answer from 192.168.1.1:5351 within 2s"
	OK       bool   `json:"ok"`
}

// Mapping is one wanted port in one address family.
type Mapping struct {
	Port
	IPv6     bool      `json:"ipv6,omitempty"`
	OK       bool      `json:"ok"`                 // forwarded (IPv4) or open (IPv6 pinhole)
	Via      string    `json:"via,omitempty"`      // e.g. "PCP"
	External string    `json:"external,omitempty"` // e.g. "192.0.3.10:12345"
	Internal string    `json:"internal,omitempty"` // e.g. "192.168.1.10:12345"
	Lifetime string    `json:"lifetime,omitempty"` // as granted, e.g. "2h0m0s"; "permanent"
	Expires  time.Time `json:"expires,omitzero"`   // when the router drops it unless renewed
	RenewAt  time.Time `json:"renew_at,omitzero"`  // when the box asks again
	Foreign  bool      `json:"foreign,omitempty"`  // forwarded by something other than homederp, left alone
	Error    string    `json:"error,omitempty"`    // why it is not forwarded
}

// Hairpin is the result of the box connecting to its own public address.
type Hairpin struct {
	To     string    `json:"to"` // e.g. "192.0.3.10:12345"
	OK     bool      `json:"ok"`
	Detail string    `json:"detail"`
	At     time.Time `json:"at"`
	// DetailText is Detail, to be translated.
	DetailText usermsg.Msg `json:"-"`
}

// status builds the round's Status from its results.
func (r *round) status(wants []want) Status {
	st := Status{Enabled: r.cfg.Enabled, Answers: []Answer{}, Mappings: []Mapping{}}
	if r.gw.IsValid() {
		st.Gateway = r.gw.String()
	}
	if r.lan.IsValid() {
		st.LANAddr = r.lan.String()
	}
	for _, l := range r.order {
		st.Answers = append(st.Answers, *r.answers[l])
	}
	var missing, missing6, open6 []string
	firewallOff := false
	for _, w := range wants {
		mp := r.results[w.key()]
		mp.Port, mp.IPv6 = w.Port, w.ipv6
		st.Mappings = append(st.Mappings, mp)
		switch {
		case !mp.OK && w.ipv6:
			missing6 = append(missing6, w.Port.Label())
		case !mp.OK:
			missing = append(missing, w.Port.Label())
		case w.ipv6:
			open6 = append(open6, w.Port.Label())
			firewallOff = firewallOff || strings.Contains(mp.Via, "firewall off")
		case !st.External.IsValid():
			if ap, err := netip.ParseAddrPort(mp.External); err == nil {
				st.External = ap.Addr()
			}
		}
	}
	if d := r.igds[0].d; !st.External.IsValid() && d != nil {
		st.External = d.external
	}
	if st.External.IsValid() {
		if why := ipclass.Check(st.External); why != ipclass.OK && why != ipclass.Cloudflare {
			st.ExternalProblem, st.Texts.ExternalProblem = usermsg.Say("router.behind_nat", "The router's own WAN address is {{.Addr}}, {{.Why}}: the router sits behind another NAT (the carrier's CGNAT, or a second router), so what it forwards does not reach the Internet. Forward the ports on the outer router too, ask the carrier for a public IPv4 address, or rely on IPv6.",
				map[string]any{"Addr": st.External.String(), "Why": why})
		}
	}
	if !r.cfg.Enabled {
		return st
	}
	if len(missing) > 0 {
		a := map[string]any{"Ports": strings.Join(missing, ", ")}
		switch {
		case len(st.Answers) == 0:
			a["Err"] = r.results[want{Port: r.cfg.Ports[0]}.key()].Error
			st.Problem, st.Texts.Problem = usermsg.Say("router.not_forwarded", "The router does not forward {{.Ports}} to the box: {{.Err}}.", a)
		case slices.ContainsFunc(st.Answers, func(a Answer) bool {
			return !strings.Contains(a.Result, "no answer") && !strings.Contains(a.Result, "no Internet gateway")
		}):
			st.Problem, st.Texts.Problem = usermsg.Say("router.refused", "The router does not forward {{.Ports}} to the box: the router refused (see what each protocol answered).", a)
		default:
			st.Problem, st.Texts.Problem = usermsg.Say("router.no_answer", "The router does not forward {{.Ports}} to the box: no router protocol answered.", a)
		}
	}
	switch {
	case !r.addr6.IsValid():
		st.IPv6, st.Texts.IPv6 = usermsg.Say("router.no_ipv6", "This box has no stable global IPv6 address, so there is nothing to open for IPv6.", nil)
	case len(missing6) == 0 && firewallOff:
		st.IPv6, st.Texts.IPv6 = usermsg.Say("router.firewall_off", "The router's IPv6 firewall is off: {{.Addr}} is reachable over IPv6 without pinholes.", map[string]any{"Addr": r.addr6.String()})
	case len(missing6) == 0:
		st.IPv6, st.Texts.IPv6 = usermsg.Say("router.ipv6_open", "Open to the Internet over IPv6 at {{.Addr}}: the router keeps pinholes for {{.Ports}}.",
			map[string]any{"Addr": r.addr6.String(), "Ports": strings.Join(open6, ", ")})
	default:
		st.IPv6, st.Texts.IPv6 = usermsg.Say("router.ipv6_closed", "The router does not let the box open its IPv6 firewall for {{.Ports}} (PCP over IPv6 and UPnP's IPv6 firewall control, see below). Allow {{.And}} in to {{.Addr}} in the router's IPv6 firewall settings, or clients cannot reach the relay over IPv6.",
			map[string]any{"Ports": strings.Join(missing6, ", "), "And": strings.Join(missing6, " and "), "Addr": r.addr6.String()})
	}
	return st
}

// hairpin checks the first TCP port (DERP) through the router's public
// address: the mapping's, else the line's address as ddns knows it.
func (r *round) hairpin(st Status) *Hairpin {
	var port uint16
	for _, p := range r.cfg.Ports {
		if p.Proto == "tcp" {
			port = p.Port
			break
		}
	}
	if port == 0 {
		return nil
	}
	ext := st.External
	if (!ext.IsValid() || st.ExternalProblem != "") && r.m.o.PublicIPv4 != nil {
		ext = r.m.o.PublicIPv4()
	}
	h := &Hairpin{At: r.now}
	if !ext.IsValid() || !ext.Is4() {
		h.Detail, h.DetailText = usermsg.Say("router.hairpin_untried", "not tried: the line's public IPv4 address is not known", nil)
		return h
	}
	to := netip.AddrPortFrom(ext, port)
	h.To = to.String()
	err := hairpin(r.ctx, r.m.o.Net, to, r.cfg.Hostname, 5*time.Second)
	if err == nil {
		h.OK = true
		h.Detail, h.DetailText = usermsg.Say("router.hairpin_ok", "the box reached its own relay at {{.To}} through the router", map[string]any{"To": to.String()})
	} else {
		h.Detail, h.DetailText = usermsg.Say("router.hairpin_failed", "{{.Err}}; many routers do not loop connections to their own public address back in, so this alone does not mean the port is closed", map[string]any{"Err": err.Error()})
	}
	return h
}
