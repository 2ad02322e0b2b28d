package relay

import (
	"sync"
	"time"
)

// TrafficSample is the relay over one sampling interval.
type TrafficSample struct {
	Time    time.Time `json:"time"`     // the end of the interval
	Clients int       `json:"clients"`  // connected at Time
	MbpsIn  float64   `json:"mbps_in"`  // DERP payload received, Mbit/s over the interval
	MbpsOut float64   `json:"mbps_out"` // DERP payload sent (the home line's upload)
}

// TrafficHistory keeps the last day of samples in memory, for the status
// page's chart. Nothing is written to disk: a restart starts a new day.
// It outlives relay restarts (a port change starts a new Server with
// counters at zero), so it is fed Status snapshots rather than owned by a
// Server.
type TrafficHistory struct {
	keep time.Duration

	mu      sync.Mutex
	samples []TrafficSample
	prev    Status
	prevAt  time.Time
}

// NewTrafficHistory keeps samples for keep, e.g. 24 h.
func NewTrafficHistory(keep time.Duration) *TrafficHistory {
	return &TrafficHistory{keep: keep}
}

// Add records st as seen at now. The rates are the byte counters'
// growth since the previous Add; counters that went back (a new relay
// after a port change) start over and give no rate for that interval.
func (h *TrafficHistory) Add(now time.Time, st Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := TrafficSample{Time: now, Clients: st.ClientsConnected}
	if el := now.Sub(h.prevAt).Seconds(); !h.prevAt.IsZero() && el > 0 {
		if d := st.BytesReceived - h.prev.BytesReceived; d >= 0 {
			s.MbpsIn = float64(d) * 8 / el / 1e6
		}
		if d := st.BytesSent - h.prev.BytesSent; d >= 0 {
			s.MbpsOut = float64(d) * 8 / el / 1e6
		}
	}
	h.prev, h.prevAt = st, now
	h.samples = append(h.samples, s)
	cut := 0
	for cut < len(h.samples) && now.Sub(h.samples[cut].Time) > h.keep {
		cut++
	}
	if cut > 0 {
		h.samples = append(h.samples[:0], h.samples[cut:]...)
	}
}

// Samples returns the kept samples, oldest first.
func (h *TrafficHistory) Samples() []TrafficSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]TrafficSample(nil), h.samples...)
}
