package ddns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/homederp/homederp/ddns/ipclass"
	"tailscale.com/tstime"
)

// Config is what an Updater needs. Everything it talks to is passed in,
// so tests point it at loopback or at a network-namespace test bed.
type Config struct {
	Hostname     string // e.g. "derp.example.com"
	ProviderName string // for the status page, e.g. "cloudflare"
	IPv4, IPv6   bool   // which records to keep

	Provider Provider
	Detector Detector
	Verifier Verifier

	Interval time.Duration // between checks after success; 0 = 2m
	// RetryBase and RetryMax bound the exponential backoff after
	// failures; 0 = 30s and 5m. Failed checks cost no API calls unless
	// a write was due, and the Cloudflare client has its own budget.
	RetryBase, RetryMax time.Duration
	// ConfirmTimeout is how long to wait after a write for every
	// authoritative server to serve it; 0 = 2m. Polls start at
	// ConfirmStart (0 = 1s) and double.
	ConfirmTimeout, ConfirmStart time.Duration
	// RedetectDelay is the pause before a second detection that must
	// agree with the first before anything is written; 0 = 2s.
	RedetectDelay time.Duration
	TTL           time.Duration // of written records; 0 = 60s

	StateDir   string // where the history is kept; "" = memory only
	HistoryLen int    // 0 = DefaultHistoryLen

	Clock tstime.Clock // nil = the real clock
	Rand  func() float64
	Logf  func(format string, args ...any)
	// OnChange is called (outside any lock) after a check whose outcome
	// changed what the DERP map depends on (NoIPv4), so the map is
	// re-rendered.
	OnChange func(Status)
}

// Updater keeps Hostname's records pointed at the line. Run it in a
// goroutine; read Status at any time.
type Updater struct {
	c    Config
	kick chan struct{}

	mu     sync.Mutex
	status Status
	hist   history
}

// New prepares an updater and loads its history. A broken history file is
// moved aside and reported in the status; New fails only on a missing
// dependency.
func New(c Config) (*Updater, error) {
	if c.Provider == nil || c.Detector == nil || c.Verifier == nil {
		return nil, errors.New("ddns: Provider, Detector and Verifier are required")
	}
	if c.Hostname == "" {
		return nil, errors.New("ddns: no hostname")
	}
	if c.Interval <= 0 {
		c.Interval = 2 * time.Minute
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 30 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.ConfirmTimeout <= 0 {
		c.ConfirmTimeout = 2 * time.Minute
	}
	if c.ConfirmStart <= 0 {
		c.ConfirmStart = time.Second
	}
	if c.RedetectDelay <= 0 {
		c.RedetectDelay = 2 * time.Second
	}
	if c.TTL <= 0 {
		c.TTL = 60 * time.Second
	}
	if c.HistoryLen <= 0 {
		c.HistoryLen = DefaultHistoryLen
	}
	if c.Clock == nil {
		c.Clock = tstime.StdClock{}
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	u := &Updater{c: c, kick: make(chan struct{}, 1)}
	h, err := loadHistory(c.StateDir, c.Clock.Now())
	u.hist = h
	if h.Hostname != "" && !strings.EqualFold(h.Hostname, c.Hostname) {
		// The name changed: what was published was for another name.
		u.hist.Published = map[string]string{}
	}
	u.hist.Hostname = c.Hostname
	u.status = Status{Enabled: true, Provider: c.ProviderName, Hostname: c.Hostname, LastChange: h.LastChange, NoIPv4: h.NoIPv4 && c.IPv4}
	if err != nil {
		u.status.Warnings = []string{err.Error()}
		u.hist.add(Event{Time: c.Clock.Now(), Kind: "warning", Message: err.Error()}, c.HistoryLen)
	}
	u.status.History = slices.Clone(u.hist.Events)
	return u, nil
}

// Status returns a snapshot for the web UI.
func (u *Updater) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.status
	s.ServedA = slices.Clone(s.ServedA)
	s.ServedAAAA = slices.Clone(s.ServedAAAA)
	s.Warnings = slices.Clone(s.Warnings)
	s.History = slices.Clone(s.History)
	s.Sources = slices.Clone(s.Sources)
	return s
}

// CheckNow asks Run to check at once instead of waiting for the interval.
func (u *Updater) CheckNow() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// Run checks until ctx is done: every Interval (±10%) while things work,
// with exponential backoff while they do not.
func (u *Updater) Run(ctx context.Context) {
	failures := 0
	for {
		err := u.Check(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		d := nextDelay(failures, u.c.Interval, u.c.RetryBase, u.c.RetryMax, u.c.Rand())
		u.mu.Lock()
		u.status.NextCheck = u.c.Clock.Now().Add(d)
		u.mu.Unlock()
		t, ch := u.c.Clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-ch:
		case <-u.kick:
			t.Stop()
		}
	}
}

func (u *Updater) sleep(ctx context.Context, d time.Duration) error {
	t, ch := u.c.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

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
func (u *Updater) Check(ctx context.Context) error {
	now := u.c.Clock.Now()
	res := u.c.Detector.Detect(ctx, u.c.IPv4, u.c.IPv6)
	fams := []*family{
		{typ: "A", enabled: u.c.IPv4, det: res.IPv4},
		{typ: "AAAA", enabled: u.c.IPv6, det: res.IPv6},
	}

	var warnings []string
	var problems []string
	var sources []string
	u.mu.Lock()
	prev := u.status
	u.mu.Unlock()
	next := Status{CGNAT: res.IPv4.CGNAT}
	for _, f := range fams {
		if !f.enabled {
			continue
		}
		for _, o := range f.det.Observations {
			sources = append(sources, o.String())
		}
		warnings = append(warnings, f.det.Warnings...)
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
			problems = append(problems, fmt.Sprintf("%s: %s", familyName(f.typ), f.det.Problem))
			if f.typ == "A" {
				// Unknown is no verdict: keep the last one, so that
				// one failed check does not flip the DERP map.
				next.NoIPv4, next.CGNAT = prev.NoIPv4, prev.CGNAT
			}
		}
	}

	served, err := u.c.Verifier.Served(ctx, u.c.Hostname, u.c.IPv4, u.c.IPv6)
	if err != nil {
		problems = append(problems, fmt.Sprintf("Could not ask the authoritative DNS servers: %v", err))
		return u.finish(now, next, warnings, problems, sources, nil)
	}
	next.Zone = served.Zone
	fams[0].answers, fams[1].answers = served.A, served.AAAA
	next.ServedA = authdns.Compare(served.A, nil).Union
	next.ServedAAAA = authdns.Compare(served.AAAA, nil).Union

	for _, a := range append(slices.Clone(next.ServedA), next.ServedAAAA...) {
		if ipclass.IsCloudflare(a) {
			next.Proxied = true
			problems = append(problems, fmt.Sprintf("%s is proxied by Cloudflare (orange cloud): its authoritative servers answer %v, a Cloudflare address. DERP on a custom port and STUN over UDP cannot pass Cloudflare's proxy. In the Cloudflare dashboard, set the record to \"DNS only\" (grey cloud); homederp does not change the setting for you.", u.c.Hostname, a))
			return u.finish(now, next, warnings, problems, sources, nil)
		}
	}

	// Decide per family.
	want := map[string]netip.Addr{}
	for _, f := range fams {
		if !f.enabled {
			continue
		}
		g := authdns.Compare(f.answers, nil)
		if f.det.State == detect.None && g.Answered > 0 && len(g.Union) > 0 {
			warnings = append(warnings, fmt.Sprintf("DNS still serves %s %s for %s, but the line has no usable public %s. homederp never deletes records: remove it yourself if you like (the DERP map already tells clients not to use it).", f.typ, joinAddrs(g.Union), u.c.Hostname, familyName(f.typ)))
		}
		if f.det.State != detect.Known {
			continue
		}
		addr := f.det.Addr
		g = authdns.Compare(f.answers, []netip.Addr{addr})
		switch {
		case g.InSync():
			u.adopt(f.typ, addr)
		case g.Matching > 0:
			warnings = append(warnings, fmt.Sprintf("Some authoritative servers still serve an old %s record for %s (%s); waiting for them to catch up.", f.typ, u.c.Hostname, staleServers(f.answers, addr)))
		default:
			want[f.typ] = addr
		}
	}
	if len(want) == 0 {
		return u.finish(now, next, warnings, problems, sources, nil)
	}

	// Hysteresis: a second detection a moment later must say the same,
	// so one odd answer cannot flip the record back and forth.
	if err := u.sleep(ctx, u.c.RedetectDelay); err != nil {
		return err
	}
	again := u.c.Detector.Detect(ctx, want["A"].IsValid(), want["AAAA"].IsValid())
	for typ, addr := range want {
		d := again.IPv4
		if typ == "AAAA" {
			d = again.IPv6
		}
		if d.State != detect.Known || d.Addr != addr {
			problems = append(problems, fmt.Sprintf("%s: the address changed between two checks (%v, then %s); waiting until it settles.", familyName(typ), addr, describe(d)))
			delete(want, typ)
		}
	}
	if len(want) == 0 {
		return u.finish(now, next, warnings, problems, sources, nil)
	}

	changes, err := u.write(ctx, fams, want)
	if err != nil {
		problems = append(problems, err.Error())
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
		if serr := u.hist.save(u.c.StateDir); serr != nil {
			u.c.Logf("ddns: saving history: %v", serr)
		}
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
