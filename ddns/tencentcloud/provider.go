package tencentcloud

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/records"
	"github.com/homederp/homederp/internal/usermsg"
)

// MinTTL is the lowest TTL of DNSPod's free plan, which most home users
// have; paid plans allow less, but homederp stays at 600 s for all.
const MinTTL = 600 * time.Second

// Provider is a libdns provider for DNSPod (ddns/records over the DNSPod
// API). The ACME DNS-01 solver can use it as it is.
type Provider struct {
	*records.Provider
	secretID, secretKey string
	client              *apiclient.Client
}

// New returns a provider using a Tencent Cloud API key (SecretId and
// SecretKey, from 访问管理 → API密钥管理) through a client with options o.
func New(secretID, secretKey string, o apiclient.Options) *Provider {
	p := &Provider{secretID: strings.TrimSpace(secretID), secretKey: strings.TrimSpace(secretKey), client: apiclient.New(vendor, o)}
	p.Provider = records.New(api{p}, vendor.Name)
	return p
}

// Client returns the provider's API client, e.g. to read its request
// count.
func (p *Provider) Client() *apiclient.Client { return p.client }

// Check verifies the key when the user saves it, with calls that write
// nothing: if hostname is empty, that Tencent Cloud accepts the key (it
// lists one domain); otherwise that the account holds the zone of
// hostname and the key may read its records.
func (p *Provider) Check(ctx context.Context, hostname string) error {
	if err := checkShape(p.secretID, p.secretKey); err != nil {
		return err
	}
	if hostname == "" {
		err := p.call(ctx, "DescribeDomainList", map[string]any{"Limit": 1}, nil)
		if hasCode(err, "ResourceNotFound.NoDataOfDomain") {
			return nil // a good key of an account without domains
		}
		return err
	}
	return p.CheckHost(ctx, hostname)
}

// checkShape catches the common mix-ups before any call: an empty half,
// and the legacy DNSPod Token ("ID,Token" for the old dnsapi.cn API),
// which many guides use but Tencent Cloud API 3.0 does not accept.
func checkShape(id, key string) error {
	switch {
	case id == "" || key == "":
		return errors.New("paste both the SecretId and the SecretKey of a Tencent Cloud API key")
	case strings.Contains(id, ",") || strings.Contains(key, ",") || isDigits(id):
		return errors.New("this looks like a DNSPod Token (ID,Token) for DNSPod's old API; homederp needs a Tencent Cloud API key: create one under Tencent Cloud console → 访问管理 (CAM) → API密钥管理 and paste its SecretId and SecretKey")
	case strings.ContainsAny(id+key, " \t\r\n"):
		return errors.New("the SecretId and SecretKey contain no spaces: paste each alone")
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// api is the DNSPod API as ddns/records wants it.
type api struct{ p *Provider }

// domainInfo is DescribeDomain's DomainInfo, the fields homederp reads.
type domainInfo struct {
	Status       string   `json:"Status"`    // "ENABLE", "PAUSE", "SPAM", "LOCK"
	DNSStatus    string   `json:"DnsStatus"` // "" or "DNSERROR" (the registrar does not point at DNSPod)
	DnspodNsList []string `json:"DnspodNsList"`
}

// maxDomainPages bounds the paging through DescribeDomainList (3000
// domains a page).
const maxDomainPages = 10

func (a api) Zones(ctx context.Context) ([]string, error) {
	var names []string
	for page := 0; page < maxDomainPages; page++ {
		var res struct {
			DomainCountInfo struct {
				DomainTotal int `json:"DomainTotal"`
			} `json:"DomainCountInfo"`
			DomainList []struct {
				Name string `json:"Name"`
			} `json:"DomainList"`
		}
		err := a.p.call(ctx, "DescribeDomainList", map[string]any{"Offset": len(names), "Limit": 3000}, &res)
		if hasCode(err, "ResourceNotFound.NoDataOfDomain") {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("listing the DNSPod domains: %w", err)
		}
		for _, d := range res.DomainList {
			names = append(names, d.Name)
		}
		if len(res.DomainList) == 0 || len(names) >= res.DomainCountInfo.DomainTotal {
			break
		}
	}
	return names, nil
}

func (a api) Zone(ctx context.Context, name string) (records.Zone, error) {
	var res struct {
		DomainInfo domainInfo `json:"DomainInfo"`
	}
	if err := a.p.call(ctx, "DescribeDomain", map[string]any{"Domain": name}, &res); err != nil {
		return records.Zone{}, records.Explain(err, name, "looking up the DNSPod domain %s", name)
	}
	d := res.DomainInfo
	switch {
	case d.Status == "PAUSE":
		return records.Zone{}, usermsg.Errorf("provider.dnspod.paused", "DNS for {{.Domain}} is paused at DNSPod: turn it on again (开启解析) in the DNSPod console", map[string]any{"Domain": name})
	case d.Status == "SPAM" || d.Status == "LOCK":
		return records.Zone{}, usermsg.Errorf("provider.dnspod.domain_locked", "DNSPod has locked or blocked the domain {{.Domain}}, so its records cannot be changed", map[string]any{"Domain": name})
	case d.DNSStatus == "DNSERROR":
		return records.Zone{}, usermsg.Errorf("provider.dnspod.not_authoritative", "DNSPod is not the authoritative DNS of {{.Domain}} yet: set the domain's name servers at your registrar to {{.NS}}", map[string]any{"Domain": name, "NS": strings.Join(d.DnspodNsList, " and ")})
	}
	return records.Zone{Name: name, MinTTL: MinTTL}, nil
}

// recordItem is one entry of DescribeRecordList's RecordList.
type recordItem struct {
	RecordID uint64 `json:"RecordId"`
	Name     string `json:"Name"` // relative, "@" for the apex
	Type     string `json:"Type"`
	Line     string `json:"Line"` // "默认" for the default line
	Value    string `json:"Value"`
	TTL      int64  `json:"TTL"`
	Status   string `json:"Status"` // "ENABLE" or "DISABLE"
}

func (a api) List(ctx context.Context, zone, name, typ string) ([]records.Record, error) {
	var res struct {
		RecordList []recordItem `json:"RecordList"`
	}
	err := a.p.call(ctx, "DescribeRecordList", map[string]any{
		"Domain": zone, "Subdomain": name, "RecordType": typ, "RecordLine": DefaultLine, "Limit": 100,
	}, &res)
	if hasCode(err, "ResourceNotFound.NoDataOfRecord") {
		return nil, nil
	}
	if err != nil {
		return nil, records.Explain(err, zone, "listing the %s records of %s", typ, name)
	}
	var out []records.Record
	for _, r := range res.RecordList {
		if strings.EqualFold(r.Name, name) && r.Type == typ && r.Line == DefaultLine {
			out = append(out, records.Record{ID: strconv.FormatUint(r.RecordID, 10), Name: r.Name, Type: r.Type, Value: r.Value, TTL: time.Duration(r.TTL) * time.Second})
		}
	}
	return out, nil
}

func (a api) params(zone string, r records.Record) map[string]any {
	return map[string]any{
		"Domain": zone, "SubDomain": r.Name, "RecordType": r.Type, "RecordLine": DefaultLine,
		"Value": r.Value, "TTL": int64(r.TTL / time.Second),
	}
}

func (a api) Create(ctx context.Context, zone string, r records.Record) error {
	var res struct {
		RecordID uint64 `json:"RecordId"`
	}
	if err := a.p.call(ctx, "CreateRecord", a.params(zone, r), &res); err != nil {
		return records.Explain(err, zone, "creating the %s record of %s", r.Type, r.Name)
	}
	if res.RecordID == 0 {
		return fmt.Errorf("DNSPod answered CreateRecord for %s without a record ID", r.Name)
	}
	return nil
}

func (a api) Update(ctx context.Context, zone string, r records.Record) error {
	id, err := strconv.ParseUint(r.ID, 10, 64)
	if err != nil || id == 0 {
		return fmt.Errorf("bad DNSPod record ID %q", r.ID)
	}
	params := a.params(zone, r)
	params["RecordId"] = id
	if err := a.p.call(ctx, "ModifyRecord", params, nil); err != nil {
		return records.Explain(err, zone, "changing the %s record of %s", r.Type, r.Name)
	}
	return nil
}

func (a api) Delete(ctx context.Context, zone string, r records.Record) error {
	id, err := strconv.ParseUint(r.ID, 10, 64)
	if err != nil || id == 0 {
		return fmt.Errorf("bad DNSPod record ID %q", r.ID)
	}
	if err := a.p.call(ctx, "DeleteRecord", map[string]any{"Domain": zone, "RecordId": id}, nil); err != nil {
		return records.Explain(err, zone, "deleting the %s record of %s", r.Type, r.Name)
	}
	return nil
}
