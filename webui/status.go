package webui

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/portmap"
)

// statusView is the status page: everything at a glance, worst first.
type statusView struct {
	Configured bool           `json:"configured"` // a hostname is set
	Hostname   string         `json:"hostname"`
	DERPPort   int            `json:"derp_port"`
	STUNPort   int            `json:"stun_port"`
	Warnings   []string       `json:"warnings"`
	Relay      *relay.Status  `json:"relay,omitempty"` // nil: not available
	DDNS       *ddns.Status   `json:"ddns,omitempty"`
	DNS        dnsView        `json:"dns"`
	Tailnet    tailnetView    `json:"tailnet"`
	PeerRelay  peerRelayView  `json:"peer_relay"`
	Verify     string         `json:"verify"` // "off", "tailscaled" or "url"
	Reach      reachView      `json:"reach"`
	Traffic    []trafficPoint `json:"traffic"` // 5-minute buckets of the last day
	Charts     []chartView    `json:"-"`
	Applies    []ServiceApply `json:"applies,omitempty"`
	Logs       []LogLine      `json:"logs"`
	Now        time.Time      `json:"now"`
	Refresh    int            `json:"-"` // seconds between the page's own reloads of its figures
}

// dnsView compares the line's public addresses with what DNS serves.
type dnsView struct {
	Provider   string   `json:"provider"` // "" when the name is managed elsewhere
	PublicV4   string   `json:"public_ipv4,omitempty"`
	PublicV6   string   `json:"public_ipv6,omitempty"`
	ServedA    []string `json:"served_a,omitempty"`
	ServedAAAA []string `json:"served_aaaa,omitempty"`
	Match      string   `json:"match"` // "yes", "no" or "unknown"
}

// statusLogLines is how much of the log the page shows.
const statusLogLines = 40

// statusRefresh is how often an open status page reloads its figures
// (static/ui.js, while the page is visible).
const statusRefresh = 10 * time.Second

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	c := s.o.Store.Config()
	v := statusView{
		Configured: c.Hostname != "",
		Hostname:   c.Hostname,
		DERPPort:   c.Relay.DERPPort,
		STUNPort:   c.Relay.STUNPort,
		Verify:     verifyMode(c),
		Now:        s.o.Now(),
		Warnings:   []string{},
		Logs:       []LogLine{},
		Refresh:    int(s.refresh / time.Second),
	}
	if err := s.o.Store.LoadError(); err != nil {
		v.Warnings = append(v.Warnings, t.S("warn.load_error", "Err", err.Error()))
	}
	if !v.Configured {
		v.Warnings = append(v.Warnings, t.S("warn.not_set_up"))
	}
	if s.o.RelayStatus != nil {
		rs := s.o.RelayStatus()
		v.Relay = &rs
	}
	if s.o.DDNSStatus != nil {
		ds := s.o.DDNSStatus()
		v.DDNS = &ds
	}
	ctx, cancel := reqCtx(r, 4*time.Second)
	defer cancel()
	// Both ask the box's tailscaled, each for at most
	// tailnetAskTimeout; at once, so a hung tailscaled costs the page
	// that much once.
	peerRelay := make(chan peerRelayView, 1)
	go func() { peerRelay <- s.peerRelayState(ctx, t, c) }()
	v.Tailnet = s.tailnetState(ctx, t, c)
	v.DNS = dnsSummary(c, v.DDNS)
	var ps *portmap.Status
	if s.o.PortMapStatus != nil {
		st := s.o.PortMapStatus()
		ps = &st
	}
	v.Reach = s.reach(t, c, v.Relay, ps, v.DDNS, v.DNS)
	v.Warnings = append(v.Warnings, warnings(t, c, v.Relay, v.DDNS, v.Tailnet, v.DNS, v.Now)...)
	v.PeerRelay = <-peerRelay
	v.Warnings = append(v.Warnings, peerRelayWarnings(t, v.PeerRelay)...)
	v.Warnings = append(v.Warnings, reachWarnings(t, c, v.Reach)...)
	v.Warnings = append(v.Warnings, s.refusalWarnings(t, v.Now)...)
	v.Traffic = []trafficPoint{}
	if s.o.Traffic != nil {
		v.Traffic = bucketTraffic(s.o.Traffic(), v.Now)
		v.Charts = trafficCharts(t, v.Traffic, v.Now)
	}
	if s.o.Applies != nil {
		v.Applies = s.o.Applies()
		v.Warnings = append(v.Warnings, applyWarnings(t, v.Applies, v.Now)...)
	}
	if s.o.Logs != nil {
		lines := s.o.Logs.Lines()
		v.Logs = lines[max(0, len(lines)-statusLogLines):]
	}
	s.render(w, r, http.StatusOK, "status", s.newPage(u, t.S("nav.status"), "status", v))
}

func verifyMode(c config.Config) string {
	switch {
	case c.Relay.VerifyClients:
		return "tailscaled"
	case c.Relay.VerifyClientURL != "":
		return "url"
	}
	return "off"
}

func dnsSummary(c config.Config, d *ddns.Status) dnsView {
	v := dnsView{Provider: c.DDNS.Provider, Match: "unknown"}
	if d == nil {
		return v
	}
	str := func(as []netip.Addr) []string {
		var ss []string
		for _, a := range as {
			ss = append(ss, a.String())
		}
		return ss
	}
	if d.PublicIPv4.IsValid() {
		v.PublicV4 = d.PublicIPv4.String()
	}
	if d.PublicIPv6.IsValid() {
		v.PublicV6 = d.PublicIPv6.String()
	}
	v.ServedA, v.ServedAAAA = str(d.ServedA), str(d.ServedAAAA)
	known, ok := false, true
	if d.PublicIPv4.IsValid() && c.DDNS.IPv4 {
		known = true
		ok = ok && slices.Equal(d.ServedA, []netip.Addr{d.PublicIPv4})
	}
	if d.PublicIPv6.IsValid() && c.DDNS.IPv6 {
		known = true
		ok = ok && slices.Equal(d.ServedAAAA, []netip.Addr{d.PublicIPv6})
	}
	switch {
	case !known:
	case ok:
		v.Match = "yes"
	default:
		v.Match = "no"
	}
	return v
}

// cgnat is the shared address space carriers use for CGNAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// warnings lists what needs the user's attention, in plain words. The
// ddns service's own warnings come first; the ones added here are those
// only the whole picture shows.
func warnings(t *tr, c config.Config, rs *relay.Status, ds *ddns.Status, tn tailnetView, dns dnsView, now time.Time) []string {
	var ws []string
	add := func(w string) {
		if !slices.Contains(ws, w) {
			ws = append(ws, w)
		}
	}
	// What the ddns service says itself (in English) may already say
	// what a warning here would.
	mentions := func(word string) bool {
		return slices.ContainsFunc(append(ds.Warnings, ds.LastError), func(w string) bool { return strings.Contains(strings.ToLower(w), word) })
	}
	configured := c.Hostname != ""
	switch {
	case !configured:
	case ds == nil || !ds.Enabled:
		add(t.S("warn.no_ddns", "Host", c.Hostname))
	case ds.LastCheck.IsZero() && !ds.PublicIPv4.IsValid() && !ds.PublicIPv6.IsValid():
		add(t.S("warn.no_address_yet"))
	case !ds.PublicIPv4.IsValid() && !ds.PublicIPv6.IsValid():
		add(t.S("warn.no_address"))
	}
	if configured && verifyMode(c) == "off" {
		add(t.S("warn.open"))
	}
	if ds != nil {
		for _, w := range ds.Warnings {
			add(t.sentences(ds.Msgs, w))
		}
		if ds.LastError != "" {
			add(t.S("warn.ddns", "Err", t.sentences(ds.Msgs, ds.LastError)))
		}
		if ds.Proxied && !mentions("proxied") {
			add(t.S("warn.proxied", "Host", c.Hostname))
		}
		if (ds.NoIPv4 || ds.CGNAT || ds.PublicIPv4.IsValid() && cgnat.Contains(ds.PublicIPv4)) && !mentions("cgnat") {
			add(t.S("warn.cgnat"))
		}
		if dns.Match == "no" && !ds.Proxied {
			add(t.S("warn.wrong_address", "Host", c.Hostname, "Served", orNone(t, append(dns.ServedA, dns.ServedAAAA...)), "Line", orNone(t, nonEmpty(dns.PublicV4, dns.PublicV6))))
		}
	}
	if rs != nil {
		if rs.Error != "" {
			add(t.S("warn.relay", "Err", rs.Error))
		}
		if rs.CertError != "" {
			add(t.S("warn.cert", "Err", t.sentences(rs.Msgs, rs.CertError)))
		}
		if rs.VerifyProblem != "" {
			add(t.S("warn.verify", "Err", t.sentences(rs.Msgs, rs.VerifyProblem)))
		}
		if c.Cert.Mode == config.CertACMEDNS && rs.CertPinned && c.Cert.ACMECA != "staging" {
			add(t.S("warn.acme_pending"))
		}
		if rs.MeshError != "" {
			add(t.S("warn.mesh", "Err", t.sentences(rs.Msgs, rs.MeshError)))
		}
		for _, m := range rs.Mesh {
			switch {
			case m.Self || m.Connected:
			case m.Error != "":
				add(t.S("warn.mesh_peer", "Peer", m.Peer, "Err", m.Error))
			default:
				add(t.S("warn.mesh_peer_yet", "Peer", m.Peer))
			}
		}
		if !rs.CertNotAfter.IsZero() {
			switch left := rs.CertNotAfter.Sub(now); {
			case left < 0:
				add(t.S("warn.cert_expired", "Date", rs.CertNotAfter.UTC().Format("2006-01-02")))
			case left < 14*24*time.Hour:
				add(t.S("warn.cert_expires", "Days", int(left.Hours()/24), "Date", rs.CertNotAfter.UTC().Format("2006-01-02")))
			}
		}
	}
	relaySaysVerify := rs != nil && rs.VerifyProblem != ""
	if c.Relay.VerifyClients {
		switch {
		case relaySaysVerify && tn.Running() && tn.Peers == 0:
			add(t.S("warn.verify_no_peers"))
		case relaySaysVerify:
		case !tn.Reachable:
			add(t.S("warn.verify_unreachable", "Err", tn.Error))
		case !tn.Running():
			add(t.S("warn.verify_not_running", "State", t.backendState(tn.State)))
		case tn.Peers == 0:
			add(t.S("warn.verify_no_peers"))
		}
	} else if tn.Reachable && tn.State == "NeedsLogin" {
		add(t.S("warn.logged_out"))
	}
	return ws
}

// reachWarnings: the router asked and refused, and no client proved the
// box reachable otherwise; or the router itself is behind another NAT.
func reachWarnings(t *tr, c config.Config, r reachView) []string {
	var ws []string
	if ps := r.Mapping; ps != nil && ps.ExternalProblem != "" {
		ws = append(ws, t.text(ps.Texts.ExternalProblem, ps.ExternalProblem))
	}
	if ps := r.Mapping; !r.Proven && c.PortMapping.Enabled && ps != nil && !ps.LastRound.IsZero() && !ps.AllMapped() {
		ws = append(ws, t.S("warn.not_forwarded", "Forward", forwardText(t, r.ManualForward)))
	}
	return ws
}

func orNone(t *tr, ss []string) string {
	if len(ss) == 0 {
		return t.S("word.nothing")
	}
	return strings.Join(ss, ", ")
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// refusalWarnings tell of requests the web UI refused in the last day:
// from outside the local network (a port-forward to the web UI?) and for
// names the box does not answer to (DNS rebinding, or a name of the
// user's own).
func (s *Server) refusalWarnings(t *tr, now time.Time) []string {
	var ws []string
	if k := s.refused.stats(refusedSource); k.Total > 0 && now.Sub(k.Last) < 24*time.Hour {
		ws = append(ws, t.S("warn.refused_source", "N", k.Total, "Src", k.LastSrc, "When", ago(t, k.Last, now)))
	}
	if k := s.refused.stats(refusedHost); k.Total > 0 && now.Sub(k.Last) < 24*time.Hour {
		ws = append(ws, t.S("warn.refused_host", "N", k.Total, "Src", k.LastSrc, "Host", k.LastHost, "When", ago(t, k.Last, now)))
	}
	return ws
}

// ServiceApply is what one of the box's services last did with the
// saved configuration.
type ServiceApply struct {
	Service    string        `json:"service"`    // e.g. "relay"
	Generation uint64        `json:"generation"` // the configuration generation it applied
	Saved      uint64        `json:"saved"`      // the generation saved now
	At         time.Time     `json:"at"`         // when its last apply ended
	Took       time.Duration `json:"took"`
	Error      string        `json:"error,omitempty"` // why the last apply failed
}

// applyLag is how long a service may take to apply a saved
// configuration before the status page says it is behind.
const applyLag = 10 * time.Second

// applyWarnings says which services failed to apply, or are behind.
func applyWarnings(t *tr, as []ServiceApply, now time.Time) []string {
	var ws []string
	for _, a := range as {
		switch {
		case a.Error != "" && a.Service != "relay":
			// The relay's failure is its status's Error already.
			ws = append(ws, t.S("warn.apply_failed", "Service", a.Service, "Err", a.Error))
		case a.Generation < a.Saved && now.Sub(a.At) > applyLag:
			ws = append(ws, t.S("warn.apply_behind", "Service", a.Service, "Ago", now.Sub(a.At).Round(time.Second).String()))
		}
	}
	return ws
}
