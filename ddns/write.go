package ddns

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/ipclass"
	"github.com/libdns/libdns"
)

// write sets the wanted records and waits until every authoritative
// server serves them. It returns the verified changes.
func (u *Updater) write(ctx context.Context, fams []*family, want map[string]netip.Addr) ([]Event, error) {
	zone, err := u.c.Provider.ZoneFor(ctx, u.c.Hostname)
	if err != nil {
		return nil, fmt.Errorf("finding the zone of %s: %w", u.c.Hostname, err)
	}
	rel := libdns.RelativeName(strings.TrimSuffix(u.c.Hostname, ".")+".", zone)
	var recs []libdns.Record
	var types []string
	for _, typ := range []string{"A", "AAAA"} {
		addr, ok := want[typ]
		if !ok {
			continue
		}
		// Last line of defence: never write an address that is not
		// publishable, whatever the detector said.
		if r := ipclass.Check(addr); r != ipclass.OK || addr.Is4() != (typ == "A") {
			return nil, fmt.Errorf("refusing to write %s %v: %s", typ, addr, r)
		}
		recs = append(recs, libdns.Address{Name: rel, TTL: u.c.TTL, IP: addr})
		types = append(types, typ)
	}
	old := map[string]string{}
	for _, f := range fams {
		if _, ok := want[f.typ]; ok {
			old[f.typ] = joinAddrs(authdns.Compare(f.answers, nil).Union)
		}
	}
	u.c.Logf("ddns: setting %s in zone %s: %v", u.c.Hostname, zone, want)
	if _, err := u.c.Provider.SetRecords(ctx, zone, recs); err != nil {
		return nil, fmt.Errorf("updating %s at %s: %w", u.c.Hostname, u.c.ProviderName, err)
	}
	// Remember the write until the servers serve it, across a confirm
	// timeout and a restart, so that it counts as the change it is
	// whenever they do (see adopt).
	u.mu.Lock()
	for _, typ := range types {
		u.hist.Pending[typ] = want[typ].String()
	}
	u.saveHistoryLocked()
	u.mu.Unlock()

	// Confirm with backoff.
	deadline := u.c.Clock.Now().Add(u.c.ConfirmTimeout)
	wait := u.c.ConfirmStart
	var last string
	for {
		served, err := u.c.Verifier.Served(ctx, u.c.Hostname, want["A"].IsValid(), want["AAAA"].IsValid())
		done := err == nil
		if err != nil {
			last = err.Error()
		} else {
			var lag []string
			for _, typ := range types {
				answers := served.A
				if typ == "AAAA" {
					answers = served.AAAA
				}
				if g := authdns.Compare(answers, []netip.Addr{want[typ]}); !g.InSync() {
					done = false
					lag = append(lag, fmt.Sprintf("%s %s", typ, joinAddrs(g.Union)))
				}
			}
			last = "they still answer " + strings.Join(lag, ", ")
		}
		if done {
			break
		}
		if !u.c.Clock.Now().Add(wait).Before(deadline) {
			return nil, fmt.Errorf("wrote %v to %s, but after %v the authoritative servers do not serve it yet (%s); will check again", want, u.c.ProviderName, u.c.ConfirmTimeout, last)
		}
		if err := u.sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait *= 2
	}
	now := u.c.Clock.Now()
	var changes []Event
	for _, typ := range types {
		from := old[typ]
		if from == "" {
			from = "none"
		}
		changes = append(changes, Event{Time: now, Kind: "change", Message: fmt.Sprintf("%s %s: %s → %v", typ, u.c.Hostname, from, want[typ])})
	}
	u.mu.Lock()
	for _, typ := range types {
		u.hist.Published[typ] = want[typ].String()
		delete(u.hist.Pending, typ)
	}
	u.hist.LastChange = now
	u.mu.Unlock()
	return changes, nil
}

// adopt records an address the servers already serve correctly. If it is
// what an earlier write set, whose confirmation timed out, this is that
// change, verified late, and adopt returns its event. Otherwise (the first
// check after start, or a record fixed by hand) it is not a change of
// homederp's.
func (u *Updater) adopt(typ string, addr netip.Addr) []Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	pending, isPending := u.hist.Pending[typ]
	if u.hist.published(typ) == addr && !isPending {
		return nil
	}
	var changes []Event
	if pending == addr.String() {
		now := u.c.Clock.Now()
		from := u.hist.Published[typ]
		if from == "" {
			from = "none"
		}
		changes = append(changes, Event{Time: now, Kind: "change", Message: fmt.Sprintf("%s %s: %s → %v", typ, u.c.Hostname, from, addr)})
		u.hist.LastChange = now
	}
	u.hist.Published[typ] = addr.String()
	delete(u.hist.Pending, typ)
	u.saveHistoryLocked()
	return changes
}

func (u *Updater) saveHistoryLocked() {
	if err := u.hist.save(u.c.StateDir); err != nil {
		u.c.Logf("ddns: saving history: %v", err)
	}
}
