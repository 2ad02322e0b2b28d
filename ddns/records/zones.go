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
// finder's life, so that it costs one or two API calls once. It asks the
// provider in one of two ways: Lookup for each parent name, or List for
// all the zones the key may see and Detail for the one that holds the
// hostname. The second suits providers whose keys can be limited to some
// domains (Tencent Cloud CAM, Alibaba Cloud RAM), where asking about a
// name outside them is refused rather than answered "no such zone".
type ZoneFinder struct {
	Vendor string // for messages, e.g. "AliDNS"
	// Lookup asks the provider whether name (e.g. "example.com") is a
	// zone of the account: ok = false if not. An error stops the search
	// (a bad key, throttling, a zone that cannot be used).
	Lookup func(ctx context.Context, name string) (z Zone, ok bool, err error)
	// List returns the names of the zones the key may see, e.g.
	// ["example.com", "example.org"]; Detail describes one of them, or
	// says why it cannot be used.
	List   func(ctx context.Context) ([]string, error)
	Detail func(ctx context.Context, name string) (Zone, error)
	// NoZone is the error when no zone holds the hostname; nil = a
	// NoZoneError.
	NoZone func(host string) error

	mu    sync.Mutex
	zones map[string]Zone // hostname → zone
}

// Find returns the zone holding hostname. With Lookup it tries each parent
// name in turn, longest first: for "derp.home.example.com" it asks for
// "derp.home.example.com", "home.example.com", "example.com". With List it
// takes the longest listed zone that holds hostname.
func (f *ZoneFinder) Find(ctx context.Context, hostname string) (Zone, error) {
	host := strings.ToLower(strings.TrimSuffix(hostname, "."))
	f.mu.Lock()
	z, ok := f.zones[host]
	f.mu.Unlock()
	if ok {
		return z, nil
	}
	var err error
	if f.List != nil {
		z, ok, err = f.fromList(ctx, host)
	} else {
		z, ok, err = f.walk(ctx, host)
	}
	switch {
	case err != nil:
		return Zone{}, err
	case !ok && f.NoZone != nil:
		return Zone{}, f.NoZone(host)
	case !ok:
		return Zone{}, &NoZoneError{Vendor: f.Vendor, Host: host}
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

func (f *ZoneFinder) walk(ctx context.Context, host string) (Zone, bool, error) {
	labels := strings.Split(host, ".")
	for i := 0; i < len(labels)-1; i++ {
		z, ok, err := f.Lookup(ctx, strings.Join(labels[i:], "."))
		if err != nil || ok {
			return z, ok, err
		}
	}
	return Zone{}, false, nil
}

func (f *ZoneFinder) fromList(ctx context.Context, host string) (Zone, bool, error) {
	names, err := f.List(ctx)
	if err != nil {
		return Zone{}, false, err
	}
	best := ""
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if (host == n || strings.HasSuffix(host, "."+n)) && len(n) > len(best) {
			best = n
		}
	}
	if best == "" {
		return Zone{}, false, nil
	}
	z, err := f.Detail(ctx, best)
	return z, err == nil, err
}

// NoZoneError says that the key sees no zone holding a hostname.
type NoZoneError struct {
	Vendor string
	Host   string // e.g. "derp.example.com"
}

// UserMessage is e's sentence for the user: its ID in the web UI's
// catalogues (webui/locales), and its arguments.
func (e *NoZoneError) UserMessage() (id string, args map[string]any) {
	return "provider.no_zone", map[string]any{"Host": e.Host, "Vendor": e.Vendor}
}

func (e *NoZoneError) Error() string {
	return fmt.Sprintf("no zone for %s that this %s key may see: add the domain to the account, or give the key access to it", e.Host, e.Vendor)
}
