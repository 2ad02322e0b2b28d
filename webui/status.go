package webui

import (
	"fmt"
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
		v.Warnings = append(v.Warnings, "The saved configuration could not be used, so the box runs with defaults: "+err.Error())
	}
	if !v.Configured {
		v.Warnings = append(v.Warnings, "The box is not set up yet: open Setup and give it a name.")
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
	go func() { peerRelay <- s.peerRelayState(ctx, c) }()
	v.Tailnet = s.tailnetState(ctx, c)
	v.DNS = dnsSummary(c, v.DDNS)
	var ps *portmap.Status
	if s.o.PortMapStatus != nil {
		st := s.o.PortMapStatus()
		ps = &st
	}
	v.Reach = s.reach(c, v.Relay, ps, v.DDNS, v.DNS)
	v.Warnings = append(v.Warnings, warnings(c, v.Relay, v.DDNS, v.Tailnet, v.DNS, v.Now)...)
	v.PeerRelay = <-peerRelay
	v.Warnings = append(v.Warnings, peerRelayWarnings(v.PeerRelay)...)
	v.Warnings = append(v.Warnings, reachWarnings(c, v.Reach)...)
	v.Warnings = append(v.Warnings, s.refusalWarnings(v.Now)...)
	v.Traffic = []trafficPoint{}
	if s.o.Traffic != nil {
		v.Traffic = bucketTraffic(s.o.Traffic(), v.Now)
		v.Charts = trafficCharts(v.Traffic, v.Now)
	}
	if s.o.Applies != nil {
		v.Applies = s.o.Applies()
		v.Warnings = append(v.Warnings, applyWarnings(v.Applies, v.Now)...)
	}
	if s.o.Logs != nil {
		lines := s.o.Logs.Lines()
		v.Logs = lines[max(0, len(lines)-statusLogLines):]
	}
	s.render(w, r, http.StatusOK, "status", s.newPage(u, "Status", "status", v))
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
func warnings(c config.Config, rs *relay.Status, ds *ddns.Status, tn tailnetView, dns dnsView, now time.Time) []string {
	var ws []string
	add := func(format string, args ...any) {
		w := fmt.Sprintf(format, args...)
		if !slices.Contains(ws, w) {
			ws = append(ws, w)
		}
	}
	mentions := func(word string) bool {
		return slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(strings.ToLower(w), word) })
	}
	configured := c.Hostname != ""
	switch {
	case !configured:
	case ds == nil || !ds.Enabled:
		add("The box does not look up the line's public address (no DNS provider in Setup, step 1), so this page cannot tell whether %s points at it.", c.Hostname)
	case ds.LastCheck.IsZero() && !ds.PublicIPv4.IsValid() && !ds.PublicIPv6.IsValid():
		add("The box has not found the line's public address yet; the first check runs shortly after start.")
	case !ds.PublicIPv4.IsValid() && !ds.PublicIPv6.IsValid():
		add("The last check found no public address for this line, neither IPv4 nor IPv6: clients on the Internet cannot reach the relay.")
	}
	if configured && verifyMode(c) == "off" {
		add("Anyone who has the map or guesses the address can use this relay: client verification is off. Turn it on in Setup, step 5, to admit only your own nodes.")
	}
	if ds != nil {
		for _, w := range ds.Warnings {
			add("%s", w)
		}
		if ds.LastError != "" {
			add("Dynamic DNS: %s", ds.LastError)
		}
		if ds.Proxied && !mentions("proxied") {
			add("DNS answers for %s with Cloudflare proxy addresses (an orange-cloud record). DERP and STUN cannot pass Cloudflare's proxy: set the record to DNS only.", c.Hostname)
		}
		if (ds.NoIPv4 || ds.CGNAT || ds.PublicIPv4.IsValid() && cgnat.Contains(ds.PublicIPv4)) && !mentions("cgnat") {
			add("Your line has no public IPv4 address of its own (CGNAT or DS-Lite): clients from the Internet can reach the relay only over IPv6, and the map says \"IPv4\": \"none\".")
		}
		if dns.Match == "no" && !ds.Proxied {
			add("DNS does not serve this line's address for %s (it serves %s; the line has %s). Clients go to the wrong place until the record is updated.",
				c.Hostname, orNone(append(dns.ServedA, dns.ServedAAAA...)), orNone(nonEmpty(dns.PublicV4, dns.PublicV6)))
		}
	}
	if rs != nil {
		if rs.Error != "" {
			add("Relay: %s. Clients cannot use it; change the setting that fails (Setup).", rs.Error)
		}
		if rs.CertError != "" {
			add("Certificate: %s", rs.CertError)
		}
		if rs.VerifyProblem != "" {
			add("Client verification: %s", rs.VerifyProblem)
		}
		if c.Cert.Mode == config.CertACMEDNS && rs.CertPinned && c.Cert.ACMECA != "staging" {
			add("The trusted certificate is not in place yet, so the relay serves its self-signed one and the map pins it. When the trusted certificate arrives the map changes (no pin): paste the new map then. headscale with derp.urls picks it up by itself.")
		}
		if rs.MeshError != "" {
			add("Mesh: %s", rs.MeshError)
		}
		for _, m := range rs.Mesh {
			switch {
			case m.Self || m.Connected:
			case m.Error != "":
				add("Mesh peer %s is not connected (%s): clients of the two servers cannot reach each other through the mesh.", m.Peer, m.Error)
			default:
				add("Mesh peer %s is not connected yet.", m.Peer)
			}
		}
		if !rs.CertNotAfter.IsZero() {
			switch left := rs.CertNotAfter.Sub(now); {
			case left < 0:
				add("The relay's certificate expired on %s; clients refuse it.", rs.CertNotAfter.UTC().Format("2006-01-02"))
			case left < 14*24*time.Hour:
				add("The relay's certificate expires in %d days (%s).", int(left.Hours()/24), rs.CertNotAfter.UTC().Format("2006-01-02"))
			}
		}
	}
	relaySaysVerify := rs != nil && rs.VerifyProblem != ""
	if c.Relay.VerifyClients {
		switch {
		case relaySaysVerify && tn.Running() && tn.Peers == 0:
			add("verify-clients is on but the box's tailscaled sees no other nodes: your ACLs must let it see every client, or they are refused.")
		case relaySaysVerify:
		case !tn.Reachable:
			add("verify-clients is on but the box's tailscaled cannot be reached (%s): the relay refuses every client.", tn.Error)
		case !tn.Running():
			add("verify-clients is on but the box's tailscaled is %s (logged out?): the relay refuses every client until it logs in again (Setup, step 5).", tn.State)
		case tn.Peers == 0:
			add("verify-clients is on but the box's tailscaled sees no other nodes: your ACLs must let it see every client, or they are refused.")
		}
	} else if tn.Reachable && tn.State == "NeedsLogin" {
		add("The box's tailscaled is logged out, so verify-clients cannot be on: anyone who knows the address can use the relay. Log it in (Setup, step 5).")
	}
	return ws
}

// reachWarnings: the router asked and refused, and no client proved the
// box reachable otherwise; or the router itself is behind another NAT.
func reachWarnings(c config.Config, r reachView) []string {
	var ws []string
	if ps := r.Mapping; ps != nil && ps.ExternalProblem != "" {
		ws = append(ws, ps.ExternalProblem)
	}
	if ps := r.Mapping; !r.Proven && c.PortMapping.Enabled && ps != nil && !ps.LastRound.IsZero() && !ps.AllMapped() {
		ws = append(ws, fmt.Sprintf("The router did not forward the relay's ports when the box asked (see Reachable from outside for what it answered): forward %s on the router by hand, or switch on its UPnP.", forwardText(r.ManualForward)))
	}
	return ws
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "nothing"
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
func (s *Server) refusalWarnings(now time.Time) []string {
	var ws []string
	if k := s.refused.stats(refusedSource); k.Total > 0 && now.Sub(k.Last) < 24*time.Hour {
		ws = append(ws, fmt.Sprintf("The web UI refused %d requests from outside the local network (the latest %s, %s). Check that the router forwards no port to this box's web UI.", k.Total, k.LastFrom, ago(k.Last, now)))
	}
	if k := s.refused.stats(refusedHost); k.Total > 0 && now.Sub(k.Last) < 24*time.Hour {
		ws = append(ws, fmt.Sprintf("The web UI refused %d requests for names it does not answer to (the latest %s, %s). A web page may be trying to reach the box through a browser (DNS rebinding); if it is a name of your own for the box, open the box by its address instead.", k.Total, k.LastFrom, ago(k.Last, now)))
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
func applyWarnings(as []ServiceApply, now time.Time) []string {
	var ws []string
	for _, a := range as {
		switch {
		case a.Error != "" && a.Service != "relay":
			// The relay's failure is its status's Error already.
			ws = append(ws, fmt.Sprintf("The %s service could not apply the saved configuration: %s", a.Service, a.Error))
		case a.Generation < a.Saved && now.Sub(a.At) > applyLag:
			ws = append(ws, fmt.Sprintf("The %s service has not applied the latest saved configuration yet (its last apply ended %v ago).", a.Service, now.Sub(a.At).Round(time.Second)))
		}
	}
	return ws
}
