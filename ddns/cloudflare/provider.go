package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	cf "github.com/libdns/cloudflare"
	"github.com/libdns/libdns"
)

// Provider is a libdns provider for Cloudflare: libdns/cloudflare behind
// Client, with the zone found from the hostname and errors in plain words.
// The ACME DNS-01 solver can use it as it is.
//
// Records are never created proxied (libdns/cloudflare never sends
// "proxied", and Cloudflare's default is DNS-only), and DeleteRecords
// refuses anything but TXT records with a value, so the updater's code path
// cannot delete an address record.
type Provider struct {
	lib    *cf.Provider
	client *Client

	mu    sync.Mutex
	zones map[string]string // hostname → zone apex with trailing dot
}

// New returns a provider using token (an API token with Zone:DNS:Edit and
// Zone:Zone:Read) through c (nil = a default Client).
func New(token string, c *Client) *Provider {
	if c == nil {
		c = &Client{}
	}
	return &Provider{
		lib:    &cf.Provider{APIToken: strings.TrimSpace(token), HTTPClient: c},
		client: c,
		zones:  map[string]string{},
	}
}

// Client returns the provider's HTTP client, e.g. to read its request
// count.
func (p *Provider) Client() *Client { return p.client }

// ZoneFor returns the Cloudflare zone that holds hostname, e.g.
// "example.com." for "derp.example.com", by asking the API for each parent
// name in turn (longest first). The answer is cached for the provider's
// life: it costs one or two requests once.
func (p *Provider) ZoneFor(ctx context.Context, hostname string) (string, error) {
	host := strings.ToLower(strings.TrimSuffix(hostname, "."))
	p.mu.Lock()
	z, ok := p.zones[host]
	p.mu.Unlock()
	if ok {
		return z, nil
	}
	labels := strings.Split(host, ".")
	for i := 0; i < len(labels)-1; i++ {
		cand := strings.Join(labels[i:], ".")
		var zones []struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Status string `json:"status"`
		}
		q := url.Values{"name": {cand}}
		if err := p.api(ctx, http.MethodGet, "/zones?"+q.Encode(), &zones); err != nil {
			var ae *APIError
			if errors.As(err, &ae) {
				ae.Zone = cand
			}
			return "", fmt.Errorf("looking up the Cloudflare zone of %s: %w", host, err)
		}
		for _, zn := range zones {
			if !strings.EqualFold(zn.Name, cand) {
				continue
			}
			if zn.Status != "" && zn.Status != "active" {
				return "", fmt.Errorf("the Cloudflare zone %s is %q, not active: Cloudflare is not yet the authoritative DNS for it (check the name servers at your registrar)", cand, zn.Status)
			}
			z = strings.ToLower(zn.Name) + "."
			p.mu.Lock()
			p.zones[host] = z
			p.mu.Unlock()
			return z, nil
		}
	}
	return "", fmt.Errorf("no zone for %s in this Cloudflare account: add the domain to Cloudflare, or give the token Zone → Zone → Read for it", host)
}

// api calls Cloudflare directly (for what libdns does not offer) and
// decodes the result field into out.
func (p *Provider) api(ctx context.Context, method, path string, out any) error {
	return apiCall(ctx, p.client, p.lib.APIToken, method, path, out)
}

func apiCall(ctx context.Context, c *Client, token, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, BaseURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("decoding Cloudflare's answer: %w", err)
	}
	if resp.StatusCode >= 400 || !env.Success || len(env.Errors) > 0 {
		return &APIError{Status: resp.StatusCode, Errors: env.Errors}
	}
	if out != nil && len(env.Result) > 0 {
		if err := json.Unmarshal(env.Result, out); err != nil {
			return fmt.Errorf("decoding Cloudflare's result: %w", err)
		}
	}
	return nil
}

// explain turns an error from libdns into the APIError the client saw,
// or a plain description of libdns's own complaints.
func explain(err error, sink *errSink, zone string) error {
	if err == nil {
		return nil
	}
	var ae *APIError
	if errors.As(err, &ae) {
		ae.Zone = strings.TrimSuffix(zone, ".")
		return err
	}
	if ae := sink.last(); ae != nil {
		ae.Zone = strings.TrimSuffix(zone, ".")
		return ae
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "expected 1 zone"):
		return fmt.Errorf("the token cannot see the zone %s: add the domain to this Cloudflare account or give the token Zone → Zone → Read for it (%w)", strings.TrimSuffix(zone, "."), err)
	case strings.Contains(msg, "more than 1 record"):
		return fmt.Errorf("there are several records of this type for the name; homederp never deletes records, so remove the extra ones in the Cloudflare dashboard (%w)", err)
	}
	return err
}

// SetRecords creates or updates one record per (name, type), as libdns
// specifies.
func (p *Provider) SetRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	ctx, sink := withErrSink(ctx)
	out, err := p.lib.SetRecords(ctx, zone, recs)
	return out, explain(err, sink, zone)
}

// AppendRecords adds records, e.g. an ACME challenge TXT record.
func (p *Provider) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	ctx, sink := withErrSink(ctx)
	out, err := p.lib.AppendRecords(ctx, zone, recs)
	return out, explain(err, sink, zone)
}

// GetRecords lists the zone's records.
func (p *Provider) GetRecords(ctx context.Context, zone string) ([]libdns.Record, error) {
	ctx, sink := withErrSink(ctx)
	out, err := p.lib.GetRecords(ctx, zone)
	return out, explain(err, sink, zone)
}

// DeleteRecords deletes TXT records that match exactly (ACME challenge
// clean-up). Any other type, or a TXT record without a value (which libdns
// would treat as "every TXT record of that name"), is refused.
func (p *Provider) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	for _, r := range recs {
		rr := r.RR()
		if rr.Type != "TXT" || rr.Data == "" {
			return nil, fmt.Errorf("refusing to delete %s record %q: homederp deletes only the TXT records it created", rr.Type, rr.Name)
		}
	}
	ctx, sink := withErrSink(ctx)
	out, err := p.lib.DeleteRecords(ctx, zone, recs)
	return out, explain(err, sink, zone)
}

// Interface guards.
var (
	_ libdns.RecordGetter   = (*Provider)(nil)
	_ libdns.RecordAppender = (*Provider)(nil)
	_ libdns.RecordSetter   = (*Provider)(nil)
	_ libdns.RecordDeleter  = (*Provider)(nil)
)
