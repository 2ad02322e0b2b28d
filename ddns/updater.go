package ddns

import (
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/homederp/homederp/ddns/detect"
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

	Interval time.Duration // between full checks after success; 0 = 2m
	// Prober, if set, makes a cheap check every ProbeInterval (0 = 30s)
	// between full checks, and a full check follows at once when it sees
	// a change (see Prober); *detect.Detector is one. nil = full checks
	// only.
	Prober        Prober
	ProbeInterval time.Duration
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
	det    detect.Result // the last full check's detection, for the probes
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
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 30 * time.Second
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
		u.hist.Published, u.hist.Pending = map[string]string{}, map[string]string{}
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
	s.Msgs = maps.Clone(s.Msgs)
	return s
}

// CheckNow asks Run to check at once instead of waiting for the interval.
func (u *Updater) CheckNow() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}
