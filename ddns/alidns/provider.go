package alidns

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/records"
)

// DefaultMinTTL is the lowest TTL of AliDNS's free plan, used when the API
// does not say (DescribeDomainInfo's MinTtl).
const DefaultMinTTL = 600 * time.Second

// Provider is a libdns provider for AliDNS (ddns/records over the AliDNS
// API). The ACME DNS-01 solver can use it as it is.
type Provider struct {
	*records.Provider
	keyID, secret string
	client        *apiclient.Client
}

// New returns a provider using an Alibaba Cloud AccessKey (ID and secret,
// best of a RAM user with AliyunDNSFullAccess) through a client with
// options o.
func New(keyID, secret string, o apiclient.Options) *Provider {
	p := &Provider{keyID: strings.TrimSpace(keyID), secret: strings.TrimSpace(secret), client: apiclient.New(vendor, o)}
	p.Provider = records.New(api{p}, vendorName)
	return p
}

// Client returns the provider's API client, e.g. to read its request
// count.
func (p *Provider) Client() *apiclient.Client { return p.client }

// Check verifies the AccessKey when the user saves it, with calls that
// write nothing: if hostname is empty, that Alibaba Cloud accepts it (it
// lists one domain); otherwise that the account holds the zone of
// hostname and the key may read its records.
func (p *Provider) Check(ctx context.Context, hostname string) error {
	switch {
	case p.keyID == "" || p.secret == "":
		return errors.New("paste both the AccessKey ID and the AccessKey secret")
	case strings.HasPrefix(p.keyID, "STS."):
		return errors.New("this is a temporary STS AccessKey, which expires; create a permanent AccessKey for a RAM user instead")
	case strings.ContainsAny(p.keyID+p.secret, " \t\r\n"):
		return errors.New("the AccessKey ID and secret contain no spaces: paste each alone")
	}
	if hostname == "" {
		return p.call(ctx, "DescribeDomains", url.Values{"PageSize": {"1"}}, nil)
	}
	return p.CheckHost(ctx, hostname)
}

// api is the AliDNS API as ddns/records wants it.
type api struct{ p *Provider }

// maxDomainPages bounds the paging through DescribeDomains (100 domains a
// page).
const maxDomainPages = 30

func (a api) Zones(ctx context.Context) ([]string, error) {
	var names []string
	for page := 1; page <= maxDomainPages; page++ {
		var res struct {
			TotalCount int `json:"TotalCount"`
			Domains    struct {
				Domain []struct {
					DomainName string `json:"DomainName"`
				} `json:"Domain"`
			} `json:"Domains"`
		}
		if err := a.p.call(ctx, "DescribeDomains", url.Values{"PageNumber": {strconv.Itoa(page)}, "PageSize": {"100"}}, &res); err != nil {
			return nil, fmt.Errorf("listing the AliDNS domains: %w", err)
		}
		for _, d := range res.Domains.Domain {
			names = append(names, d.DomainName)
		}
		if len(res.Domains.Domain) == 0 || len(names) >= res.TotalCount {
			break
		}
	}
	return names, nil
}

func (a api) Zone(ctx context.Context, name string) (records.Zone, error) {
	var res struct {
		MinTTL int64 `json:"MinTtl"`
	}
	if err := a.p.call(ctx, "DescribeDomainInfo", url.Values{"DomainName": {name}}, &res); err != nil {
		return records.Zone{}, records.Explain(err, name, "looking up the AliDNS domain %s", name)
	}
	z := records.Zone{Name: name, MinTTL: time.Duration(res.MinTTL) * time.Second}
	if z.MinTTL <= 0 {
		z.MinTTL = DefaultMinTTL
	}
	return z, nil
}

// record is one entry of DescribeSubDomainRecords' DomainRecords.Record.
type record struct {
	RecordID string `json:"RecordId"`
	RR       string `json:"RR"` // relative, "@" for the apex
	Type     string `json:"Type"`
	Value    string `json:"Value"`
	TTL      int64  `json:"TTL"`
	Line     string `json:"Line"`
	Status   string `json:"Status"` // "ENABLE" or "DISABLE"
}

func (a api) List(ctx context.Context, zone, name, typ string) ([]records.Record, error) {
	sub := zone
	if name != "@" {
		sub = name + "." + zone
	}
	var res struct {
		TotalCount    int `json:"TotalCount"`
		DomainRecords struct {
			Record []record `json:"Record"`
		} `json:"DomainRecords"`
	}
	err := a.p.call(ctx, "DescribeSubDomainRecords", url.Values{
		"SubDomain": {sub}, "DomainName": {zone}, "Type": {typ}, "Line": {DefaultLine}, "PageSize": {"500"},
	}, &res)
	if err != nil {
		return nil, records.Explain(err, zone, "listing the %s records of %s", typ, name)
	}
	var out []records.Record
	for _, r := range res.DomainRecords.Record {
		if strings.EqualFold(r.RR, name) && r.Type == typ && r.Line == DefaultLine {
			out = append(out, records.Record{ID: r.RecordID, Name: r.RR, Type: r.Type, Value: r.Value, TTL: time.Duration(r.TTL) * time.Second})
		}
	}
	return out, nil
}

func params(r records.Record) url.Values {
	return url.Values{"RR": {r.Name}, "Type": {r.Type}, "Value": {r.Value}, "TTL": {strconv.FormatInt(int64(r.TTL/time.Second), 10)}, "Line": {DefaultLine}}
}

func (a api) Create(ctx context.Context, zone string, r records.Record) error {
	v := params(r)
	v.Set("DomainName", zone)
	var res struct {
		RecordID string `json:"RecordId"`
	}
	if err := a.p.call(ctx, "AddDomainRecord", v, &res); err != nil {
		return records.Explain(err, zone, "creating the %s record of %s", r.Type, r.Name)
	}
	if res.RecordID == "" {
		return fmt.Errorf("AliDNS answered AddDomainRecord for %s without a record ID", r.Name)
	}
	return nil
}

func (a api) Update(ctx context.Context, zone string, r records.Record) error {
	v := params(r)
	v.Set("RecordId", r.ID)
	if err := a.p.call(ctx, "UpdateDomainRecord", v, nil); err != nil {
		return records.Explain(err, zone, "changing the %s record of %s", r.Type, r.Name)
	}
	return nil
}

func (a api) Delete(ctx context.Context, zone string, r records.Record) error {
	if err := a.p.call(ctx, "DeleteDomainRecord", url.Values{"RecordId": {r.ID}}, nil); err != nil {
		return records.Explain(err, zone, "deleting the %s record of %s", r.Type, r.Name)
	}
	return nil
}
