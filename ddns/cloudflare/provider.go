package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/records"
	"github.com/homederp/homederp/internal/usermsg"
	cf "github.com/libdns/cloudflare"
	"github.com/libdns/libdns"
)

// Provider is a libdns provider for Cloudflare: libdns/cloudflare behind
// an apiclient.Client, with the zone found from the hostname and errors in
// plain words. The ACME DNS-01 solver can use it as it is.
//
// Records are never created proxied (libdns/cloudflare never sends
// "proxied", and Cloudflare's default is DNS-only), and DeleteRecords
// refuses anything but TXT records with a value, so the updater's code path
// cannot delete an address record.
type Provider struct {
	lib    *cf.Provider
	client *apiclient.Client
	zones  records.ZoneFinder
}

// New returns a provider using token (an API token with Zone:DNS:Edit and
// Zone:Zone:Read) through a client with options o.
func New(token string, o apiclient.Options) *Provider {
	c := apiclient.New(vendor, o)
	p := &Provider{
		lib:    &cf.Provider{APIToken: strings.TrimSpace(token), HTTPClient: c},
		client: c,
	}
	p.zones = records.ZoneFinder{Vendor: vendor.Name, Lookup: p.lookupZone, NoZone: func(host string) error {
		return &noZoneError{records.NoZoneError{Vendor: vendor.Name, Host: host}}
	}}
	return p
}

// noZoneError is records.NoZoneError in Cloudflare's words.
type noZoneError struct{ records.NoZoneError }

func (e *noZoneError) Error() string {
	return fmt.Sprintf("no zone for %s in this Cloudflare account: add the domain to Cloudflare, or give the token Zone → Zone → Read for it", e.Host)
}

func (e *noZoneError) Unwrap() error { return &e.NoZoneError }

// Client returns the provider's API client, e.g. to read its request
// count.
func (p *Provider) Client() *apiclient.Client { return p.client }

// ZoneFor returns the Cloudflare zone that holds hostname, e.g.
// "example.com." for "derp.example.com". The answer is cached for the
// provider's life: it costs one or two requests once.
func (p *Provider) ZoneFor(ctx context.Context, hostname string) (string, error) {
	z, err := p.zones.Find(ctx, hostname)
	if err != nil {
		return "", err
	}
	return z.Name + ".", nil
}

func (p *Provider) lookupZone(ctx context.Context, name string) (records.Zone, bool, error) {
	var zones []struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	q := url.Values{"name": {name}}
	if err := p.api(ctx, http.MethodGet, "/zones?"+q.Encode(), &zones); err != nil {
		return records.Zone{}, false, records.Explain(err, name, "looking up the Cloudflare zone of %s", name)
	}
	for _, zn := range zones {
		if !strings.EqualFold(zn.Name, name) {
			continue
		}
		if zn.Status != "" && zn.Status != "active" {
			return records.Zone{}, false, usermsg.Errorf("provider.cloudflare.inactive_zone", `the Cloudflare zone {{.Zone}} is {{printf "%q" .Status}}, not active: Cloudflare is not yet the authoritative DNS for it (check the name servers at your registrar)`,
				map[string]any{"Zone": name, "Status": zn.Status})
		}
		return records.Zone{Name: zn.Name}, true, nil
	}
	return records.Zone{}, false, nil
}

// api calls Cloudflare directly (for what libdns does not offer) and
// decodes the result field into out.
func (p *Provider) api(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, BaseURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.lib.APIToken)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("decoding Cloudflare's answer: %w", err)
	}
	if !env.Success || len(env.Errors) > 0 {
		return &APIError{Status: resp.StatusCode, Errors: env.Errors}
	}
	if out != nil && len(env.Result) > 0 {
		if err := json.Unmarshal(env.Result, out); err != nil {
			return fmt.Errorf("decoding Cloudflare's result: %w", err)
		}
	}
	return nil
}

// explain adds the zone to the APIError behind an error from libdns, or
// describes libdns's own complaints plainly.
func explain(err error, zone string) error {
	if err == nil {
		return nil
	}
	var ae *APIError
	if errors.As(err, &ae) {
		ae.Zone = strings.TrimSuffix(zone, ".")
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "expected 1 zone"):
		return usermsg.Wrapf(err, "provider.cloudflare.zone_unseen", "the token cannot see the zone {{.Zone}}: add the domain to this Cloudflare account or give the token Zone → Zone → Read for it ({{.Err}})", map[string]any{"Zone": strings.TrimSuffix(zone, ".")})
	case strings.Contains(msg, "more than 1 record"):
		return usermsg.Wrapf(err, "provider.cloudflare.several", "there are several records of this type for the name; homederp never deletes records, so remove the extra ones in the Cloudflare dashboard ({{.Err}})", nil)
	}
	return err
}

// SetRecords creates or updates one record per (name, type), as libdns
// specifies.
func (p *Provider) SetRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	out, err := p.lib.SetRecords(ctx, zone, recs)
	return out, explain(err, zone)
}

// AppendRecords adds records, e.g. an ACME challenge TXT record.
func (p *Provider) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	out, err := p.lib.AppendRecords(ctx, zone, recs)
	return out, explain(err, zone)
}

// GetRecords lists the zone's records.
func (p *Provider) GetRecords(ctx context.Context, zone string) ([]libdns.Record, error) {
	out, err := p.lib.GetRecords(ctx, zone)
	return out, explain(err, zone)
}

// DeleteRecords deletes TXT records that match exactly (ACME challenge
// clean-up); see records.CheckDeletable for what it refuses.
func (p *Provider) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	if err := records.CheckDeletable(recs); err != nil {
		return nil, err
	}
	out, err := p.lib.DeleteRecords(ctx, zone, recs)
	return out, explain(err, zone)
}

// Interface guards.
var (
	_ libdns.RecordGetter   = (*Provider)(nil)
	_ libdns.RecordAppender = (*Provider)(nil)
	_ libdns.RecordSetter   = (*Provider)(nil)
	_ libdns.RecordDeleter  = (*Provider)(nil)
)
