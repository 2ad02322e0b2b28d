package webui

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/internal/usermsg"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/portmap"
)

// mappedStatus is a router that granted both ports over PCP and opened
// the IPv6 pinholes.
func mappedStatus(now time.Time) portmap.Status {
	m := func(proto string, port uint16, ipv6 bool, ext string) portmap.Mapping {
		return portmap.Mapping{Port: portmap.Port{Proto: proto, Port: port}, IPv6: ipv6, OK: true, Via: portmap.PCP,
			External: ext, Lifetime: "2h", Expires: now.Add(2 * time.Hour), RenewAt: now.Add(time.Hour)}
	}
	return portmap.Status{
		Enabled: true, Gateway: "192.168.1.1", LANAddr: "192.168.1.23", External: netip.MustParseAddr("198.51.100.7"),
		Answers: []portmap.Answer{{Protocol: portmap.PCP, Server: "192.168.1.1:5351", Result: "forwarded tcp 12345; forwarded udp 3478", OK: true}},
		Mappings: []portmap.Mapping{
			m("tcp", 12345, false, "198.51.100.7:12345"), m("udp", 3478, false, "198.51.100.7:3478"),
			m("tcp", 12345, true, "[2001:db8::7]:12345"), m("udp", 3478, true, "[2001:db8::7]:3478"),
		},
		IPv6:      "Open to the Internet over IPv6 at 2001:db8::7: the router keeps pinholes for tcp 12345, udp 3478.",
		Hairpin:   &portmap.Hairpin{To: "198.51.100.7:12345", Detail: "the connection did not come back to the box (connect: connection refused); many routers do not loop connections to their own public address back in, so this alone does not mean the port is closed", At: now},
		LastRound: now.Add(-time.Minute), NextRound: now.Add(time.Hour),
	}
}

// refusedStatus is a router that answered nothing.
func refusedStatus(now time.Time) portmap.Status {
	no := func(proto string, port uint16) portmap.Mapping {
		return portmap.Mapping{Port: portmap.Port{Proto: proto, Port: port}, Error: "no protocol answered"}
	}
	return portmap.Status{
		Enabled: true, Gateway: "192.168.1.1",
		Answers: []portmap.Answer{
			{Protocol: portmap.PCP, Server: "192.168.1.1:5351", Result: "tcp 12345: no answer from 192.168.1.1:5351 within 2s"},
			{Protocol: portmap.UPnP, Server: "192.168.1.1:1900", Result: "tcp 12345: no Internet gateway device answered an SSDP search"},
		},
		Mappings:  []portmap.Mapping{no("tcp", 12345), no("udp", 3478)},
		Problem:   "The router does not forward tcp 12345, udp 3478 to the box: no router protocol answered.",
		LastRound: now.Add(-time.Minute),
		Texts:     portmap.Texts{Problem: usermsg.Msg{ID: "router.no_answer", Args: map[string]any{"Ports": "tcp 12345, udp 3478"}}},
	}
}

// dayOfTraffic is a sample a minute for a day, busier in the evening.
func dayOfTraffic(now time.Time) []relay.TrafficSample {
	var out []relay.TrafficSample
	for i := 24 * 60; i > 0; i-- {
		t := now.Add(-time.Duration(i) * time.Minute)
		busy := t.Hour() >= 18 && t.Hour() < 23
		s := relay.TrafficSample{Time: t, Clients: 2, MbpsIn: 0.4, MbpsOut: 0.5}
		if busy {
			s = relay.TrafficSample{Time: t, Clients: 5, MbpsIn: 7.5, MbpsOut: 8}
		}
		out = append(out, s)
	}
	return out
}

func TestStatusReachAndChart(t *testing.T) {
	b := newBox(t, func(o *Options) {
		o.RelayStatus = func() relay.Status {
			r := syntheticRelay(o.Now())
			r.Reach = relay.Reach{Clients: 3, Last: o.Now().Add(-2 * time.Minute), LastFrom: "203.0.113.0/24", LANConnections: 4}
			return r
		}
		o.PortMapStatus = func() portmap.Status { return mappedStatus(o.Now()) }
		o.Traffic = func() []relay.TrafficSample { return dayOfTraffic(o.Now()) }
	}).configured().login()
	resp, body := b.get("/")
	mustStatus(t, "GET /", resp, body, http.StatusOK)
	contains(t, "status page", body,
		"Reached from the Internet by 3 clients, last at 2026-05-01 11:58:00 UTC from 203.0.113.0/24.",
		"The router forwards TCP 12345 and UDP 3478 to this box (asked over PCP)",
		"forwarded at <b>198.51.100.7:12345</b>", "open at <b>[2001:db8::7]:12345</b>",
		"Hairpin check (the box dialling 198.51.100.7:12345 through the router",
		"What the router answered", "forwarded tcp 12345; forwarded udp 3478",
		`<svg viewBox="0 -10 300 84" role="img" aria-label="Clients over the last 24 hours, up to 5">`,
		`<path class="line-out" d="M`, `aria-label="Mbit/s over the last 24 hours, up to 10"`,
	)
	if strings.Contains(body, "Forward these on the router by hand") {
		t.Error("the manual port-forward is shown although the router forwards both ports")
	}

	resp, body = b.get("/", "Accept", "application/json")
	mustStatus(t, "GET / JSON", resp, body, http.StatusOK)
	var v statusView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if !v.Reach.Proven || v.Reach.Mapping == nil || !v.Reach.Mapping.AllMapped() || len(v.Traffic) < 280 || len(v.Traffic) > chartBuckets+1 {
		t.Errorf("status JSON: reach %+v, %d traffic points", v.Reach, len(v.Traffic))
	}
}

func TestReachView(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name      string
		mapping   bool
		peerRelay bool
		proxy     bool // nginx on the home line, port 443
		ps        portmap.Status
		reach     relay.Reach
		proven    bool
		router    string   // prefix of Router
		manual    bool     // the manual port-forward is shown
		checks    []string // substrings of the checks
		warnings  []string // substrings of the warnings
		noWarning bool
	}{
		{name: "mapped, no client yet", mapping: true, ps: mappedStatus(now),
			router: "The router forwards TCP 12345 and UDP 3478", checks: []string{"tailscale netcheck tests only STUN"}, noWarning: true},
		{name: "mapped and reached", mapping: true, ps: mappedStatus(now), reach: relay.Reach{Clients: 1, Last: now, LastFrom: "203.0.113.0/24"},
			proven: true, router: "The router forwards", noWarning: true},
		{name: "router refuses", mapping: true, ps: refusedStatus(now), router: "The router does not forward tcp 12345, udp 3478",
			manual: true, checks: []string{"The router forwards TCP 12345 and UDP 3478 to 192.168.1.23"},
			warnings: []string{"forward TCP 12345 and UDP 3478 to 192.168.1.23 on the router by hand"}},
		{name: "reverse proxy on the line: the box maps STUN, the user forwards 443 to the proxy", mapping: true, proxy: true,
			ps: func() portmap.Status {
				s := mappedStatus(now)
				s.Mappings = s.Mappings[1:2] // udp 3478 only
				return s
			}(), router: "The router forwards UDP 3478 to this box", manual: true,
			checks: []string{"The router forwards TCP 443 to your reverse proxy (the table below)"}, noWarning: true},
		{name: "router refuses but clients get in (a manual forward)", mapping: true, ps: refusedStatus(now),
			reach: relay.Reach{Clients: 2, Last: now, LastFrom: "203.0.113.0/24"}, proven: true, router: "The router does not forward", manual: true, noWarning: true},
		{name: "router refuses, peer relay on", mapping: true, peerRelay: true, ps: refusedStatus(now), router: "The router does not forward", manual: true,
			checks:   []string{"The router forwards TCP 12345, UDP 3478 and UDP 40000 to 192.168.1.23"},
			warnings: []string{"forward TCP 12345, UDP 3478 and UDP 40000 to 192.168.1.23 on the router by hand"}},
		{name: "switched off", ps: portmap.Status{}, router: "Port mapping is off", manual: true,
			checks: []string{"The router forwards TCP 12345 and UDP 3478 to 192.168.1.23"}, noWarning: true},
		{name: "router behind CGNAT", mapping: true, ps: func() portmap.Status {
			s := mappedStatus(now)
			s.External = netip.MustParseAddr("100.64.3.4")
			s.ExternalProblem = "The router's own WAN address is 100.64.3.4, in 100.64.0.0/10: the router sits behind another NAT"
			return s
		}(), router: "The router forwards", checks: []string{"sits behind another NAT"}, warnings: []string{"sits behind another NAT"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBox(t, nil).configured()
			c := b.store.Config()
			c.PortMapping.Enabled = tt.mapping
			c.PeerRelay.Enabled = tt.peerRelay
			if tt.proxy {
				c.ReverseProxy = config.ReverseProxy{Enabled: true, PublicPort: 443, Trusted: []string{"192.168.1.2"}}
			}
			rs := relay.Status{Reach: tt.reach}
			v := b.s.reach(english(t), c, &rs, &tt.ps, nil, dnsView{Match: "yes"})
			if v.Proven != tt.proven || !strings.HasPrefix(v.Router, tt.router) || (len(v.ManualForward) > 0) != tt.manual {
				t.Errorf("got proven %v router %q manual %+v; want %v, %q…, manual %v", v.Proven, v.Router, v.ManualForward, tt.proven, tt.router, tt.manual)
			}
			checks := strings.Join(v.Checks, "\n")
			for _, want := range tt.checks {
				if !strings.Contains(checks, want) {
					t.Errorf("checks: got %q, want %q", v.Checks, want)
				}
			}
			ws := reachWarnings(english(t), c, v)
			if tt.noWarning && len(ws) > 0 {
				t.Errorf("warnings: got %q, want none", ws)
			}
			for _, want := range tt.warnings {
				if !strings.Contains(strings.Join(ws, "\n"), want) {
					t.Errorf("warnings: got %q, want %q", ws, want)
				}
			}
		})
	}
}

// TestSetupPortMappingSwitch: step 2's checkbox switches port mapping,
// on by default.
func TestSetupPortMappingSwitch(t *testing.T) {
	b := newBox(t, nil).configured().login()
	_, page := b.get("/setup")
	contains(t, "setup page", page, `name="port_mapping.enabled" checked`, "The box asks your router for this port-forward itself")
	resp, body := b.submit("/setup", "/setup/ports", url.Values{"relay.derp_port": {"12345"}, "relay.stun_port": {"3478"}})
	mustStatus(t, "switch off", resp, body, http.StatusSeeOther)
	if b.store.Config().PortMapping.Enabled {
		t.Error("port mapping still on after saving step 2 without the box ticked")
	}
	_, page = b.get("/setup")
	contains(t, "setup page", page, "Make this port-forward on your home router")
	resp, body = b.submit("/setup", "/setup/ports", url.Values{"relay.derp_port": {"12345"}, "relay.stun_port": {"3478"}, "port_mapping.enabled": {"on"}})
	mustStatus(t, "switch on", resp, body, http.StatusSeeOther)
	if c := b.store.Config(); !c.PortMapping.Enabled {
		t.Error("port mapping off after saving step 2 with the box ticked")
	}
}

func TestChart(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	samples := []relay.TrafficSample{
		{Time: now.Add(-23 * time.Hour), Clients: 1, MbpsOut: 0.3},
		{Time: now.Add(-23*time.Hour + time.Minute), Clients: 3, MbpsOut: 0.1}, // same bucket: max clients, mean Mbit/s
		{Time: now.Add(-10 * time.Minute), Clients: 2, MbpsIn: 1.5, MbpsOut: 2.5},
		{Time: now.Add(-25 * time.Hour), Clients: 9}, // too old
	}
	points := bucketTraffic(samples, now)
	if len(points) != 2 || points[0].Clients != 3 || points[0].MbpsOut != 0.2 || points[1].MbpsIn != 1.5 {
		t.Fatalf("buckets: got %+v", points)
	}
	charts := trafficCharts(english(t), points, now)
	if got := charts[0].Max; got != "3" {
		t.Errorf("clients axis: got %q, want 3", got)
	}
	if got := charts[1].Max; got != "5" {
		t.Errorf("Mbit/s axis: got %q, want 5", got)
	}
	// Two points a day apart are two pieces of line, not one.
	if p := charts[0].Series[0].Path; strings.Count(p, "M") != 2 {
		t.Errorf("path with a gap: got %q, want two moves", p)
	}
	for _, tt := range []struct{ in, want float64 }{{0, 0.1}, {0.07, 0.1}, {0.3, 0.5}, {1, 1}, {1.2, 2}, {17, 20}, {50, 50}, {51, 100}} {
		if got := niceCeil(tt.in); got != tt.want {
			t.Errorf("niceCeil(%v): got %v, want %v", tt.in, got, tt.want)
		}
	}
}
