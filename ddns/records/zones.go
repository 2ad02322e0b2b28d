// Package records turns a DNS provider's record API (list, create,
// update, delete by ID) into a libdns provider with homederp's rules, so
// that each provider package only speaks its API:
//
//   - the zone is found from the hostname (longest parent name first) and
//     cached;
//   - SetRecords keeps exactly one record per name and type: it creates
//     one, updates the one there is, writes nothing when it already holds
//     the value, and refuses (never deletes) when there are several;
//   - DeleteRecords deletes only TXT records with a value (the ACME
//     challenge), never an address record;
//   - TTLs are raised to the zone's minimum (600 s on the free plans of
//     DNSPod and AliDNS) instead of failing.
package records

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Zone is a zone of the provider account.
type Zone struct {
	Name   string        // apex without trailing dot, e.g. "example.com"
	MinTTL time.Duration // the lowest TTL the zone's plan accepts, e.g. 10m; 0 = no limit known
}

// ZoneFinder finds the zone holding a hostname and remembers it for the
// finder's life, so that it costs one or two API calls once.
type ZoneFinder struct {
	Vendor string // for messages, e.g. "AliDNS"
	// Lookup asks the provider whether name (e.g. "example.com") is a
	// zone of the account: ok = false if not. An error stops the search
	// (a bad key, throttling, a zone that cannot be used).
	Lookup func(ctx context.Context, name string) (z Zone, ok bool, err error)
	// NoZone is the error when no parent name is a zone; nil = a
	// generic sentence.
	NoZone func(host string) error

	mu    sync.Mutex
	zones map[string]Zone // hostname → zone
}

// Find returns the zone holding hostname, trying each parent name in turn,
// longest first: for "derp.home.example.com" it asks for
// "derp.home.example.com", "home.example.com", "example.com".
func (f *ZoneFinder) Find(ctx context.Context, hostname string) (Zone, error) {
	host := strings.ToLower(strings.TrimSuffix(hostname, "."))
	f.mu.Lock()
	z, ok := f.zones[host]
	f.mu.Unlock()
	if ok {
		return z, nil
	}
	labels := strings.Split(host, ".")
	for i := 0; i < len(labels)-1; i++ {
		cand := strings.Join(labels[i:], ".")
		z, ok, err := f.Lookup(ctx, cand)
		if err != nil {
			return Zone{}, err
		}
		if !ok {
			continue
		}
		z.Name = strings.ToLower(strings.TrimSuffix(z.Name, "."))
		f.mu.Lock()
		if f.zones == nil {
			f.zones = map[string]Zone{}
		}
		f.zones[host] = z
		f.zones[z.Name] = z
		f.mu.Unlock()
		return z, nil
	}
	if f.NoZone != nil {
		return Zone{}, f.NoZone(host)
	}
	return Zone{}, &NoZoneError{Vendor: f.Vendor, Host: host}
}

// NoZoneError says that the account has no zone for a hostname.
type NoZoneError struct {
	Vendor string
	Host   string // e.g. "derp.example.com"
}

func (e *NoZoneError) Error() string {
	return fmt.Sprintf("no zone for %s in this %s account: add the domain there, or use a key of the account that holds it", e.Host, e.Vendor)
}
