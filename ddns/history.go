package ddns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/homederp/homederp/internal/statefile"
)

// HistoryFile is the history's name inside the state directory.
const HistoryFile = "ddns-history.json"

// DefaultHistoryLen is how many events are kept.
const DefaultHistoryLen = 50

// history is the persisted part of the updater's state: what it last
// published and verified, and the recent events. It is written only after
// a verified success (for Published) or when an event is added.
type history struct {
	Version   int               `json:"version"`
	Hostname  string            `json:"hostname"`            // e.g. "derp.example.com"
	Published map[string]string `json:"published,omitempty"` // "A" → "203.0.113.9", verified
	// Pending are writes not yet seen served, e.g. "A" → "198.51.100.7"
	// after a confirm timeout.
	Pending    map[string]string `json:"pending,omitempty"`
	LastChange time.Time         `json:"last_change,omitzero"` // of the last verified update
	// NoIPv4 is the last known "no public IPv4" verdict, so that the
	// DERP map says "IPv4": "none" right from boot, before the first check.
	NoIPv4 bool    `json:"no_ipv4,omitempty"`
	Events []Event `json:"events"` // newest first
}

// loadHistory reads dir/HistoryFile. A missing file is an empty history.
// A broken file is moved aside (never overwritten or deleted) and reported.
func loadHistory(dir string, now time.Time) (history, error) {
	h := history{Version: 1, Published: map[string]string{}, Pending: map[string]string{}}
	if dir == "" {
		return h, nil
	}
	path := filepath.Join(dir, HistoryFile)
	if err := statefile.RemoveTemp(path); err != nil {
		return h, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("reading the DNS history: %w", err)
	}
	var got history
	if err := json.Unmarshal(b, &got); err != nil || got.Version != 1 {
		aside := fmt.Sprintf("%s.broken-%s", path, now.UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return h, fmt.Errorf("the DNS history %s is broken and could not be moved aside: %v", path, rerr)
		}
		if err == nil {
			err = fmt.Errorf("unknown version %d", got.Version)
		}
		return h, fmt.Errorf("the DNS history was unreadable (%v); it was kept as %s and a new one started", err, aside)
	}
	if got.Published == nil {
		got.Published = map[string]string{}
	}
	if got.Pending == nil {
		got.Pending = map[string]string{}
	}
	return got, nil
}

func (h *history) save(dir string) error {
	if dir == "" {
		return nil
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	return statefile.Write(filepath.Join(dir, HistoryFile), append(b, '\n'), 0644)
}

// add puts e first, keeping at most n events. An error or warning that
// repeats the newest event of its kind is not added again, so a failure
// that lasts a day leaves one entry, not hundreds (other updaters notify
// on every cycle).
func (h *history) add(e Event, n int) bool {
	for _, old := range h.Events {
		if old.Kind == e.Kind {
			if e.Kind != "change" && old.Message == e.Message {
				return false
			}
			break
		}
	}
	h.Events = append([]Event{e}, h.Events...)
	if len(h.Events) > n {
		h.Events = h.Events[:n]
	}
	return true
}

func (h *history) published(typ string) netip.Addr {
	a, _ := netip.ParseAddr(h.Published[typ])
	return a
}
