package alidnstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/homederp/homederp/ddns/ddnstest"
)

// Version is the only AliDNS API version the fake speaks.
const Version = "2015-01-09"

// apiError is an error answer: HTTP status, code and message.
type apiError struct {
	status        int
	code, message string
}

func requestID() string { return strings.ToUpper(uuid.NewString()) }

func reply(w http.ResponseWriter, fields map[string]any) {
	fields["RequestId"] = requestID()
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	json.NewEncoder(w).Encode(fields)
}

func replyError(w http.ResponseWriter, e apiError) {
	id := requestID()
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{
		"RequestId": id, "HostId": "alidns.aliyuncs.com", "Code": e.code, "Message": e.message,
		"Recommend": "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.code) + "&product=Alidns&requestId=" + id,
	})
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.Code != "" {
		status := f.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		msg := f.Message
		if msg == "" {
			msg = "scripted fault"
		}
		replyError(w, apiError{status, f.Code, msg})
		return
	}
	ddnstest.WriteRaw(w, f.Status, f.ContentType, f.Body)
}

var writes = []string{"AddDomainRecord", "UpdateDomainRecord", "DeleteDomainRecord"}

var (
	errNoDomain  = apiError{400, "InvalidDomainName.NoExist", "The specified domain name does not exist. Refresh the page and try again."}
	errNoRecord  = apiError{400, "DomainRecordNotBelongToUser", "The DNS record does not belong to this user."}
	errForbidden = apiError{403, "Forbidden.RAM", "User not authorized to operate on the specified resource, or this API doesn't support RAM."}
)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	action := r.Header.Get("x-acs-action")
	if s.Intercept(w, r, action, writeFault) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if r.Header.Get("x-acs-version") != Version {
		replyError(w, apiError{400, "InvalidVersion", "Specified parameter Version is not valid."})
		return
	}
	id, k, ae := s.authenticate(r, body)
	if ae != nil {
		replyError(w, *ae)
		return
	}
	if s.keys.Count(id, s.opts.Time(), time.Second) > s.opts.RateLimit {
		replyError(w, apiError{400, "Throttling.User", "Request was denied due to user flow control."})
		return
	}
	p := form(r, body)
	domain := strings.ToLower(p.Get("DomainName"))
	if k.ReadOnly && slices.Contains(writes, action) {
		replyError(w, errForbidden)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rid := p.Get("RecordId"); rid != "" && domain == "" {
		if rec := s.records.Find(rid); rec != nil {
			domain = rec.Domain
		}
	}
	if domain != "" && !k.Sees(domain) {
		replyError(w, errForbidden)
		return
	}
	switch action {
	case "DescribeDomainInfo":
		s.describeDomainInfo(w, domain)
	case "DescribeDomains":
		s.describeDomains(w, k, p)
	case "DescribeSubDomainRecords":
		s.describeSubDomainRecords(w, p)
	case "AddDomainRecord":
		s.addRecord(w, p)
	case "UpdateDomainRecord":
		s.updateRecord(w, p)
	case "DeleteDomainRecord":
		s.deleteRecord(w, p)
	default:
		replyError(w, apiError{404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."})
	}
}

func dnsServers(d *Domain) map[string]any { return map[string]any{"DnsServer": d.NS} }

func (s *Server) describeDomainInfo(w http.ResponseWriter, name string) {
	d := s.domainLocked(name)
	if d == nil {
		replyError(w, errNoDomain)
		return
	}
	reply(w, map[string]any{"DomainId": d.ID, "DomainName": d.Name, "PunyCode": d.Name, "AliDomain": false, "Remark": "",
		"GroupId": "", "GroupName": "", "InstanceId": "", "VersionCode": d.VersionCode, "VersionName": "Alibaba Cloud DNS",
		"MinTtl": d.MinTTL, "RecordLineTreeJson": "", "LineType": "FREE_COMMON", "DnsServers": dnsServers(d),
		"RegionLines": false, "SlaveDns": false, "InBlackHole": false, "InClean": false, "CreateTime": "2024-01-02T03:04Z",
		"ResourceGroupId": "rg-acfm00000000000"})
}

func pageOf(p url.Values) (num, size int) {
	num, _ = strconv.Atoi(p.Get("PageNumber"))
	size, _ = strconv.Atoi(p.Get("PageSize"))
	if size <= 0 {
		size = 20
	}
	return max(num, 1), min(size, 500)
}

func page[T any](all []T, num, size int) []T {
	start := min((num-1)*size, len(all))
	return all[start:min(start+size, len(all))]
}

func (s *Server) describeDomains(w http.ResponseWriter, k ddnstest.Key, p url.Values) {
	var list []map[string]any
	for _, d := range s.domains {
		if !k.Sees(d.Name) {
			continue
		}
		list = append(list, map[string]any{"DomainId": d.ID, "DomainName": d.Name, "PunyCode": d.Name, "AliDomain": false,
			"RecordCount": 0, "RegistrantEmail": "", "Remark": "", "GroupId": "", "GroupName": "", "InstanceId": "",
			"VersionCode": d.VersionCode, "VersionName": "Alibaba Cloud DNS", "InstanceEndTime": "", "InstanceExpired": false,
			"Starmark": false, "CreateTime": "2024-01-02T03:04Z", "CreateTimestamp": 1704164640000,
			"DnsServers": dnsServers(d), "Tags": map[string]any{"Tag": []any{}}, "ResourceGroupId": "rg-acfm00000000000"})
	}
	num, size := pageOf(p)
	total := len(list)
	reply(w, map[string]any{"TotalCount": total, "PageNumber": num, "PageSize": size, "Domains": map[string]any{"Domain": page(list, num, size)}})
}

func recordJSON(r *Record) map[string]any {
	return map[string]any{"DomainName": r.Domain, "RecordId": r.ID, "RR": r.Name, "Type": r.Type, "Value": r.Value,
		"TTL": r.TTL, "Line": r.Line, "Status": r.Status, "Locked": false, "Weight": 1, "Remark": "",
		"CreateTimestamp": r.Created.UnixMilli(), "UpdateTimestamp": r.Updated.UnixMilli()}
}

func (s *Server) describeSubDomainRecords(w http.ResponseWriter, p url.Values) {
	sub := strings.ToLower(strings.TrimSuffix(p.Get("SubDomain"), "."))
	if sub == "" {
		replyError(w, apiError{400, "MissingSubDomain", "SubDomain is mandatory for this action."})
		return
	}
	var d *Domain
	if name := p.Get("DomainName"); name != "" {
		d = s.domainLocked(name)
	} else {
		for _, cand := range s.domains {
			if (sub == cand.Name || strings.HasSuffix(sub, "."+cand.Name)) && (d == nil || len(cand.Name) > len(d.Name)) {
				d = cand
			}
		}
	}
	if d == nil || sub != d.Name && !strings.HasSuffix(sub, "."+d.Name) {
		replyError(w, errNoDomain)
		return
	}
	rr := strings.TrimSuffix(strings.TrimSuffix(sub, d.Name), ".")
	if rr == "" {
		rr = "@"
	}
	typ, line := strings.ToUpper(p.Get("Type")), p.Get("Line")
	var list []map[string]any
	for _, r := range s.records {
		if r.Domain == d.Name && r.Name == rr && (typ == "" || r.Type == typ) && (line == "" || r.Line == line) {
			list = append(list, recordJSON(r))
		}
	}
	num, size := pageOf(p)
	reply(w, map[string]any{"TotalCount": len(list), "PageNumber": num, "PageSize": size,
		"DomainRecords": map[string]any{"Record": page(list, num, size)}})
}

// fill checks the record fields of p as AliDNS does and applies them to
// r, or returns the error.
func fill(d *Domain, r *Record, p url.Values) *apiError {
	for _, f := range []string{"RR", "Type", "Value"} {
		if p.Get(f) == "" {
			return &apiError{400, "MissingParameter", fmt.Sprintf("The input parameter %q that is mandatory for processing this request is not supplied.", f)}
		}
	}
	r.Name, r.Type, r.Value = strings.ToLower(p.Get("RR")), strings.ToUpper(p.Get("Type")), p.Get("Value")
	r.TTL, r.Line = 600, "default"
	if v := p.Get("TTL"); v != "" {
		r.TTL, _ = strconv.Atoi(v)
	}
	if v := p.Get("Line"); v != "" {
		r.Line = v
	}
	switch r.Type {
	case "A", "AAAA":
		a, err := netip.ParseAddr(r.Value)
		if err != nil || a.Is4() != (r.Type == "A") || a.Is4In6() {
			return &apiError{400, "InvalidParameter", `The specified parameter "Value" is not valid.`}
		}
	case "TXT", "CNAME", "MX", "NS", "CAA", "SRV":
	default:
		return &apiError{400, "InvalidParameter", `The specified parameter "Type" is not valid.`}
	}
	if r.TTL < d.MinTTL || r.TTL > 86400 {
		return &apiError{400, "QuotaExceeded.TTL", fmt.Sprintf("The specified TTL is invalid. A valid TTL must be in the range of %d to 86400.", d.MinTTL)}
	}
	return nil
}

func (s *Server) addRecord(w http.ResponseWriter, p url.Values) {
	d := s.domainLocked(p.Get("DomainName"))
	if d == nil {
		replyError(w, errNoDomain)
		return
	}
	now := s.opts.Time()
	r := &Record{Domain: d.Name, Status: "ENABLE", Created: now, Updated: now}
	if e := fill(d, r, p); e != nil {
		replyError(w, *e)
		return
	}
	if s.records.Duplicate(r) {
		replyError(w, apiError{400, "DomainRecordDuplicate", "The DNS record already exists."})
		return
	}
	r.ID = s.newIDLocked()
	s.records = append(s.records, r)
	s.CountWrite()
	reply(w, map[string]any{"RecordId": r.ID})
}

func (s *Server) updateRecord(w http.ResponseWriter, p url.Values) {
	cur := s.records.Find(p.Get("RecordId"))
	if cur == nil {
		replyError(w, errNoRecord)
		return
	}
	next := *cur
	if e := fill(s.domainLocked(cur.Domain), &next, p); e != nil {
		replyError(w, *e)
		return
	}
	// AliDNS refuses an update that changes nothing, as well as one that
	// copies another record.
	if next.Name == cur.Name && next.Type == cur.Type && next.Value == cur.Value && next.TTL == cur.TTL && next.Line == cur.Line || s.records.Duplicate(&next) {
		replyError(w, apiError{400, "DomainRecordDuplicate", "The DNS record already exists."})
		return
	}
	next.Updated = s.opts.Time()
	*cur = next
	s.CountWrite()
	reply(w, map[string]any{"RecordId": cur.ID})
}

func (s *Server) deleteRecord(w http.ResponseWriter, p url.Values) {
	id := p.Get("RecordId")
	if !s.records.Delete(id) {
		replyError(w, errNoRecord)
		return
	}
	s.CountWrite()
	reply(w, map[string]any{"RecordId": id})
}
