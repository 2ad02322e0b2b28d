package ddns

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/detect"
)

// finish publishes the outcome of a check in the status and history.
func (u *Updater) finish(now time.Time, next Status, warnings, problems, sources []string, changes []Event) error {
	var err error
	if len(problems) > 0 {
		err = errors.New(strings.Join(problems, " "))
	}
	u.mu.Lock()
	prevNoIPv4 := u.status.NoIPv4
	prevWarnings := u.status.Warnings
	s := &u.status
	s.PublicIPv4, s.PublicIPv6, s.NoIPv4 = next.PublicIPv4, next.PublicIPv6, next.NoIPv4
	s.CGNAT, s.Proxied = next.CGNAT, next.Proxied
	if next.Zone != "" {
		s.Zone = next.Zone
	}
	s.ServedA, s.ServedAAAA = next.ServedA, next.ServedAAAA
	s.Sources = sources
	s.LastCheck = u.c.Clock.Now()
	s.Warnings = compactStrings(warnings)
	s.Msgs = next.Msgs
	changed := false
	for i := len(changes) - 1; i >= 0; i-- {
		changed = u.hist.add(changes[i], u.c.HistoryLen) || changed
		s.LastChange = changes[i].Time
	}
	if err != nil {
		s.LastError = err.Error()
		changed = u.hist.add(Event{Time: now, Kind: "error", Message: err.Error()}, u.c.HistoryLen) || changed
	} else {
		s.LastError = ""
	}
	for _, w := range s.Warnings {
		if !slices.Contains(prevWarnings, w) {
			changed = u.hist.add(Event{Time: now, Kind: "warning", Message: w}, u.c.HistoryLen) || changed
		}
	}
	if u.hist.NoIPv4 != s.NoIPv4 {
		u.hist.NoIPv4 = s.NoIPv4
		changed = true
	}
	if changed {
		u.saveHistoryLocked()
	}
	s.History = slices.Clone(u.hist.Events)
	snapshot := *s
	notify := prevNoIPv4 != s.NoIPv4
	u.mu.Unlock()

	for _, c := range changes {
		u.c.Logf("ddns: %s (verified)", c.Message)
	}
	if err != nil {
		u.c.Logf("ddns: %v", err)
	}
	if notify && u.c.OnChange != nil {
		u.c.OnChange(snapshot)
	}
	return err
}

func familyName(typ string) string {
	if typ == "AAAA" {
		return "IPv6"
	}
	return "IPv4"
}

func describe(f detect.Family) string {
	if f.State == detect.Known {
		return f.Addr.String()
	}
	return f.State.String()
}

func joinAddrs(as []netip.Addr) string {
	if len(as) == 0 {
		return "none"
	}
	var parts []string
	for _, a := range as {
		parts = append(parts, a.String())
	}
	return strings.Join(parts, ", ")
}

func staleServers(answers []authdns.Answer, want netip.Addr) string {
	var parts []string
	for _, a := range answers {
		if a.Err == nil && !slices.Equal(a.Addrs, []netip.Addr{want}) {
			parts = append(parts, fmt.Sprintf("%v answers %s", a.Server, joinAddrs(a.Addrs)))
		}
	}
	return strings.Join(parts, "; ")
}

func compactStrings(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
