package ddns

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"

	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/homederp/homederp/ddns/ipclass"
	"github.com/homederp/homederp/internal/usermsg"
)

// family is the per-type bookkeeping of one check.
type family struct {
	typ     string // "A" or "AAAA"
	enabled bool
	det     detect.Family
	answers []authdns.Answer
}

// Check runs one round: detect, compare with the authoritative servers,
// write only on disagreement, confirm, record. It returns the first
// problem that should make Run back off. Nothing is ever deleted, and
// nothing is written unless the address is known for sure.
//
// A write and a change of the "no public IPv4" verdict (which turns the
// DERP map's IPv4 to "none") both need two agreeing detections a moment
// apart, so that one odd answer flips neither the record nor the map.
func (u *Updater) Check(ctx context.Context) error {
	now := u.c.Clock.Now()
	u.mu.Lock()
	prev := u.status
	u.mu.Unlock()

	res := u.c.Detector.Detect(ctx, u.c.IPv4, u.c.IPv6)
	var again *detect.Result // the second detection, once made
	redetect := func(v4, v6 bool) error {
		if err := u.sleep(ctx, u.c.RedetectDelay); err != nil {
			return err
		}
		r := u.c.Detector.Detect(ctx, v4, v6)
		again = &r
		return nil
	}
	var problems []string
	// msgs are the sentences of the warnings and problems as the web
	// UI translates them, by their English (Status.Msgs).
	msgs := map[string]usermsg.Msg{}
	say := func(id, text string, args map[string]any) string {
		en, m := usermsg.Say(id, text, args)
		msgs[en] = m
		return en
	}
	if u.c.IPv4 && res.IPv4.State != detect.Unknown && (res.IPv4.State == detect.None) != prev.NoIPv4 {
		if err := redetect(true, u.c.IPv6); err != nil {
			return err
		}
		if again.IPv4.State != res.IPv4.State {
			problems = append(problems, say("dns.ipv4_flapping", "IPv4: two checks a moment apart disagree on whether the line has a public IPv4 ({{.First}}, then {{.Then}}); the DERP map keeps its IPv4 setting until they agree.",
				map[string]any{"First": describe(res.IPv4), "Then": describe(again.IPv4)}))
			res.IPv4 = detect.Family{State: detect.Unknown, Observations: res.IPv4.Observations}
		}
	}
	u.mu.Lock()
	u.det = res
	u.mu.Unlock()
	fams := []*family{
		{typ: "A", enabled: u.c.IPv4, det: res.IPv4},
		{typ: "AAAA", enabled: u.c.IPv6, det: res.IPv6},
	}

	var warnings []string
	var sources []string
	next := Status{CGNAT: res.IPv4.CGNAT}
	next.Msgs = msgs
	for _, f := range fams {
		if !f.enabled {
			continue
		}
		for _, o := range f.det.Observations {
			sources = append(sources, o.String())
		}
		warnings = append(warnings, f.det.Warnings...)
		maps.Copy(msgs, f.det.Msgs)
		switch f.det.State {
		case detect.Known:
			if f.typ == "A" {
				next.PublicIPv4 = f.det.Addr
			} else {
				next.PublicIPv6 = f.det.Addr
			}
		case detect.None:
			if f.typ == "A" {
				next.NoIPv4 = true
			}
			warnings = append(warnings, f.det.Problem)
		case detect.Unknown:
			if f.det.Problem != "" {
				problems = append(problems, say("dns.family_problem", "{{.Family}}: {{.Problem}}", map[string]any{"Family": familyName(f.typ), "Problem": f.det.Problem}))
			}
			if f.typ == "A" {
				// Unknown is no verdict: keep the last one, so that
				// one failed check does not flip the DERP map.
				next.NoIPv4, next.CGNAT = prev.NoIPv4, prev.CGNAT
			}
		}
	}

	served, err := u.c.Verifier.Served(ctx, u.c.Hostname, u.c.IPv4, u.c.IPv6)
	if err != nil {
		problems = append(problems, say("dns.no_authoritative", "Could not ask the authoritative DNS servers: {{.Err}}", map[string]any{"Err": err.Error()}))
		return u.finish(now, next, warnings, problems, sources, nil)
	}
	next.Zone = served.Zone
	fams[0].answers, fams[1].answers = served.A, served.AAAA
	next.ServedA = authdns.Compare(served.A, nil).Union
	next.ServedAAAA = authdns.Compare(served.AAAA, nil).Union

	for _, a := range append(slices.Clone(next.ServedA), next.ServedAAAA...) {
		if ipclass.IsCloudflare(a) {
			next.Proxied = true
			problems = append(problems, say("dns.proxied", "{{.Host}} is proxied by Cloudflare (orange cloud): its authoritative servers answer {{.Addr}}, a Cloudflare address. DERP on a custom port and STUN over UDP cannot pass Cloudflare's proxy. In the Cloudflare dashboard, set the record to \"DNS only\" (grey cloud); homederp does not change the setting for you.",
				map[string]any{"Host": u.c.Hostname, "Addr": a.String()}))
			return u.finish(now, next, warnings, problems, sources, nil)
		}
	}

	// Decide per family.
	want := map[string]netip.Addr{}
	var changes []Event // adopted after an earlier write
	for _, f := range fams {
		if !f.enabled {
			continue
		}
		g := authdns.Compare(f.answers, nil)
		if f.det.State == detect.None && g.Answered > 0 && len(g.Union) > 0 {
			warnings = append(warnings, say("dns.stale_family", "DNS still serves {{.Type}} {{.Addrs}} for {{.Host}}, but the line has no usable public {{.Family}}. homederp never deletes records: remove it yourself if you like (the DERP map already tells clients not to use it).",
				map[string]any{"Type": f.typ, "Addrs": joinAddrs(g.Union), "Host": u.c.Hostname, "Family": familyName(f.typ)}))
		}
		if f.det.State != detect.Known {
			continue
		}
		addr := f.det.Addr
		g = authdns.Compare(f.answers, []netip.Addr{addr})
		switch {
		case g.InSync():
			changes = append(changes, u.adopt(f.typ, addr)...)
		case g.Matching > 0:
			warnings = append(warnings, say("dns.catching_up", "Some authoritative servers still serve an old {{.Type}} record for {{.Host}} ({{.Servers}}); waiting for them to catch up.",
				map[string]any{"Type": f.typ, "Host": u.c.Hostname, "Servers": staleServers(f.answers, addr)}))
		default:
			want[f.typ] = addr
		}
	}
	if len(want) == 0 {
		return u.finish(now, next, warnings, problems, sources, changes)
	}

	// Hysteresis: a second detection a moment later must say the same,
	// so one odd answer cannot flip the record back and forth.
	if again == nil {
		if err := redetect(want["A"].IsValid(), want["AAAA"].IsValid()); err != nil {
			return err
		}
	}
	for typ, addr := range want {
		d := again.IPv4
		if typ == "AAAA" {
			d = again.IPv6
		}
		if d.State != detect.Known || d.Addr != addr {
			problems = append(problems, say("dns.address_moving", "{{.Family}}: the address changed between two checks ({{.First}}, then {{.Then}}); waiting until it settles.",
				map[string]any{"Family": familyName(typ), "First": addr.String(), "Then": describe(d)}))
			delete(want, typ)
		}
	}
	if len(want) == 0 {
		return u.finish(now, next, warnings, problems, sources, changes)
	}

	written, err := u.write(ctx, fams, want)
	changes = append(changes, written...)
	if err != nil {
		problems = append(problems, err.Error())
		noteErr(msgs, err)
	} else {
		// Show what was verified, not the answer from before the write.
		if a, ok := want["A"]; ok {
			next.ServedA = []netip.Addr{a}
		}
		if a, ok := want["AAAA"]; ok {
			next.ServedAAAA = []netip.Addr{a}
		}
	}
	return u.finish(now, next, warnings, problems, sources, changes)
}

// noteErr records the sentence an error names (a DNS provider's: it has
// a UserMessage method), by its English.
func noteErr(msgs map[string]usermsg.Msg, err error) {
	var m interface {
		error
		UserMessage() (string, map[string]any)
	}
	if errors.As(err, &m) {
		id, args := m.UserMessage()
		msgs[m.Error()] = usermsg.Msg{ID: id, Args: args}
	}
}
