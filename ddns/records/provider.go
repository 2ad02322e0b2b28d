package records

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libdns/libdns"
)

// Record is one record as a provider's API holds it.
type Record struct {
	ID    string        // the provider's record ID, e.g. "1978593525779"
	Name  string        // relative to the zone, "@" for the apex, e.g. "derp"
	Type  string        // e.g. "AAAA"
	Value string        // e.g. "2001:db8::1"; TXT without quotes
	TTL   time.Duration // e.g. 10m
}

// API is a provider's record API for one account, reduced to what
// homederp needs. zone is the apex without trailing dot.
type API interface {
	// Zones lists the zones the key may see, and Zone describes one of
	// them (see ZoneFinder.List and Detail).
	Zones(ctx context.Context) ([]string, error)
	Zone(ctx context.Context, name string) (Zone, error)
	// List returns the records of one name and type, on the provider's
	// default line only (split-horizon records of other lines belong to
	// the user).
	List(ctx context.Context, zone, name, typ string) ([]Record, error)
	Create(ctx context.Context, zone string, r Record) error
	Update(ctx context.Context, zone string, r Record) error // r.ID says which
	Delete(ctx context.Context, zone string, r Record) error // r.ID says which
}

// DefaultTTL is used when a record comes without a TTL.
const DefaultTTL = 10 * time.Minute

// Provider is a libdns provider over an API. The updater and the ACME
// DNS-01 solver use it as it is.
type Provider struct {
	api    API
	vendor string
	zones  ZoneFinder
}

// New returns a provider for api; vendor names the provider in messages.
func New(api API, vendor string) *Provider {
	return &Provider{api: api, vendor: vendor, zones: ZoneFinder{Vendor: vendor, List: api.Zones, Detail: api.Zone}}
}

// ZoneFor returns the zone holding hostname with a trailing dot, e.g.
// "example.com." for "derp.example.com".
func (p *Provider) ZoneFor(ctx context.Context, hostname string) (string, error) {
	z, err := p.zones.Find(ctx, hostname)
	if err != nil {
		return "", err
	}
	return z.Name + ".", nil
}

// CheckHost finds the zone of hostname and lists hostname's A records:
// with calls that write nothing, it shows that the account holds the zone
// and that the key may read its records.
func (p *Provider) CheckHost(ctx context.Context, hostname string) error {
	z, err := p.zones.Find(ctx, hostname)
	if err != nil {
		return err
	}
	name := libdns.RelativeName(strings.ToLower(strings.TrimSuffix(hostname, "."))+".", z.Name+".")
	if name == "" {
		name = "@"
	}
	_, err = p.api.List(ctx, z.Name, name, "A")
	return err
}

// record converts r for zone, with the TTL raised to the zone's minimum.
func (p *Provider) record(ctx context.Context, zone string, r libdns.Record) (string, Record, error) {
	rr := r.RR()
	apex := strings.ToLower(strings.TrimSuffix(zone, "."))
	z, err := p.zones.Find(ctx, apex)
	if err != nil {
		return "", Record{}, err
	}
	if z.Name != apex {
		return "", Record{}, fmt.Errorf("%s is not a zone at %s (its zone is %s)", apex, p.vendor, z.Name)
	}
	name := strings.ToLower(libdns.RelativeName(rr.Name, apex+"."))
	if name == "" {
		name = "@"
	}
	ttl := rr.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	ttl = max(ttl, z.MinTTL)
	return apex, Record{Name: name, Type: strings.ToUpper(rr.Type), Value: rr.Data, TTL: ttl.Round(time.Second)}, nil
}

// SetRecords makes each given record the only one of its name and type:
// it creates it, or updates the one that is there, or writes nothing if
// that one already holds the value and TTL. Several records of one name
// and type are refused, not deleted.
func (p *Provider) SetRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	seen := map[[2]string]bool{}
	var out []libdns.Record
	for _, lr := range recs {
		apex, want, err := p.record(ctx, zone, lr)
		if err != nil {
			return out, err
		}
		key := [2]string{want.Name, want.Type}
		if seen[key] {
			return out, fmt.Errorf("homederp sets one %s record per name, not several for %q", want.Type, want.Name)
		}
		seen[key] = true
		have, err := p.api.List(ctx, apex, want.Name, want.Type)
		if err != nil {
			return out, err
		}
		switch len(have) {
		case 0:
			err = p.api.Create(ctx, apex, want)
		case 1:
			if have[0].Value == want.Value && have[0].TTL == want.TTL {
				break
			}
			want.ID = have[0].ID
			err = p.api.Update(ctx, apex, want)
		default:
			return out, &SeveralError{Vendor: p.vendor, Name: want.Name, Type: want.Type, Zone: apex, N: len(have)}
		}
		if err != nil {
			return out, err
		}
		out = append(out, lr)
	}
	return out, nil
}

// AppendRecords creates records, e.g. an ACME challenge TXT record.
func (p *Provider) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	var out []libdns.Record
	for _, lr := range recs {
		apex, r, err := p.record(ctx, zone, lr)
		if err != nil {
			return out, err
		}
		if err := p.api.Create(ctx, apex, r); err != nil {
			return out, err
		}
		out = append(out, lr)
	}
	return out, nil
}

// DeleteRecords deletes TXT records that match exactly (ACME challenge
// clean-up); one that is already gone is skipped. Any other type, or a
// TXT record without a value, is refused: see CheckDeletable.
func (p *Provider) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	if err := CheckDeletable(recs); err != nil {
		return nil, err
	}
	var out []libdns.Record
	for _, lr := range recs {
		apex, r, err := p.record(ctx, zone, lr)
		if err != nil {
			return out, err
		}
		have, err := p.api.List(ctx, apex, r.Name, r.Type)
		if err != nil {
			return out, err
		}
		for _, h := range have {
			if h.Value != r.Value {
				continue
			}
			if err := p.api.Delete(ctx, apex, h); err != nil {
				return out, err
			}
			out = append(out, lr)
		}
	}
	return out, nil
}

// CheckDeletable refuses to delete anything but TXT records with a value:
// homederp deletes only the ACME challenge records it created, and a TXT
// record without a value would mean "every TXT record of that name" to
// libdns providers.
func CheckDeletable(recs []libdns.Record) error {
	for _, r := range recs {
		rr := r.RR()
		if rr.Type != "TXT" || rr.Data == "" {
			return fmt.Errorf("refusing to delete %s record %q: homederp deletes only the TXT records it created", rr.Type, rr.Name)
		}
	}
	return nil
}

// Explain wraps err, from a call about zone, with what was being done
// (format and args), and tells the provider's API error in err's chain
// the zone, so that its message can name the domain at fault. An API
// error takes the zone with a NameZone method.
func Explain(err error, zone, format string, args ...any) error {
	var ze interface{ NameZone(zone string) }
	if errors.As(err, &ze) {
		ze.NameZone(zone)
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// SeveralError is a name with several records of one type, which homederp
// will not reduce to one because that means deleting.
type SeveralError struct {
	Vendor, Name, Type, Zone string
	N                        int
}

func (e *SeveralError) Error() string {
	return fmt.Sprintf("there are %d %s records for %s in %s; homederp never deletes records, so remove the extra ones at %s", e.N, e.Type, e.Name, e.Zone, e.Vendor)
}

// Interface guards.
var (
	_ libdns.RecordAppender = (*Provider)(nil)
	_ libdns.RecordSetter   = (*Provider)(nil)
	_ libdns.RecordDeleter  = (*Provider)(nil)
)
