package tencentcloudtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/homederp/homederp/ddns/ddnstest"
)

// Version is the only DNSPod API version the fake speaks.
const Version = "2021-03-23"

// reply writes {"Response": fields + RequestId} with HTTP 200, as Tencent
// Cloud answers success and failure alike.
func reply(w http.ResponseWriter, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["RequestId"] = uuid.NewString()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"Response": fields})
}

func replyError(w http.ResponseWriter, code, msg string) {
	reply(w, map[string]any{"Error": map[string]string{"Code": code, "Message": msg}})
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.Status != 0 {
		ddnstest.WriteRaw(w, f.Status, f.ContentType, f.Body)
		return
	}
	msg := f.Message
	if msg == "" {
		msg = "scripted fault"
	}
	replyError(w, f.Code, msg)
}

// writes are the actions a read-only key may not call.
var writes = []string{"CreateRecord", "ModifyRecord", "DeleteRecord"}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	action := r.Header.Get("X-TC-Action")
	if s.Intercept(w, r, action, writeFault) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	switch {
	case r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		replyError(w, "InvalidParameter", "TC3-HMAC-SHA256 requests must be POST with Content-Type application/json.")
		return
	case action == "":
		replyError(w, "MissingParameter", "The request is missing a required parameter `X-TC-Action`.")
		return
	case r.Header.Get("X-TC-Version") != Version:
		replyError(w, "NoSuchVersion", fmt.Sprintf("The requested version `%s` of service `dnspod` does not exist.", r.Header.Get("X-TC-Version")))
		return
	}
	id, k, code, msg := s.authenticate(r, body)
	if code != "" {
		replyError(w, code, msg)
		return
	}
	if n := s.keys.Count(id, s.opts.Time(), time.Second); n > s.opts.RateLimit {
		replyError(w, "RequestLimitExceeded", fmt.Sprintf("Your current request times equals to `%d` in a second, which exceeds the frequency limit `%d` for a second. Please reduce the frequency of calls.", n, s.opts.RateLimit))
		return
	}
	var p params
	if err := json.Unmarshal(body, &p); err != nil {
		replyError(w, "InvalidParameter", "The request body is not valid JSON.")
		return
	}
	if k.ReadOnly && slices.Contains(writes, action) {
		replyError(w, "AuthFailure.UnauthorizedOperation", fmt.Sprintf("you are not authorized to perform operation (dnspod:%s)", action))
		return
	}
	if action != "DescribeDomainList" && !k.Sees(strings.ToLower(p.Domain)) {
		replyError(w, "AuthFailure.UnauthorizedOperation", fmt.Sprintf("you are not authorized to perform operation (dnspod:%s) on resource (qcs::dnspod:::domain/%s)", action, p.Domain))
		return
	}
	switch action {
	case "DescribeDomain":
		s.describeDomain(w, p)
	case "DescribeDomainList":
		s.describeDomainList(w, k, p)
	case "DescribeRecordList":
		s.describeRecordList(w, p)
	case "CreateRecord", "ModifyRecord":
		s.writeRecord(w, action, p)
	case "DeleteRecord":
		s.deleteRecord(w, p)
	default:
		replyError(w, "InvalidAction", fmt.Sprintf("The action `%s` is not supported by this fake.", action))
	}
}

// params are the request fields of every action the fake serves.
type params struct {
	Domain     string  `json:"Domain"`
	Subdomain  *string `json:"Subdomain"` // DescribeRecordList
	SubDomain  *string `json:"SubDomain"` // CreateRecord, ModifyRecord
	RecordType *string `json:"RecordType"`
	RecordLine *string `json:"RecordLine"`
	Value      *string `json:"Value"`
	TTL        *int    `json:"TTL"`
	MX         *int    `json:"MX"`
	RecordID   *uint64 `json:"RecordId"`
	Offset     int     `json:"Offset"`
	Limit      int     `json:"Limit"`
}

const msgNoDomain = "The current domain is incorrect. Please return and try again."

func (s *Server) describeDomain(w http.ResponseWriter, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.domainLocked(p.Domain)
	if d == nil {
		replyError(w, "InvalidParameterValue.DomainNotExists", msgNoDomain)
		return
	}
	n := 0
	for _, r := range s.records {
		if r.Domain == d.Name {
			n++
		}
	}
	actual := d.NS
	if d.DNSStatus == "DNSERROR" {
		actual = []string{"ns1.registrar-parking.example"}
	}
	reply(w, map[string]any{"DomainInfo": map[string]any{
		"DomainId": d.ID, "Status": d.Status, "Grade": d.Grade, "GroupId": 1, "IsMark": "no", "TTL": d.MinTTL,
		"CnameSpeedup": "DISABLE", "Remark": "", "Punycode": d.Name, "DnsStatus": d.DNSStatus, "DnspodNsList": d.NS,
		"Domain": d.Name, "GradeLevel": 0, "UserId": 1, "IsVip": "NO", "Owner": "", "GradeTitle": "免费版",
		"CreatedOn": "2024-01-02 03:04:05", "UpdatedOn": "2024-01-02 03:04:05", "Uin": "100000000001",
		"ActualNsList": actual, "RecordCount": n, "OwnerNick": "",
	}})
}

func (s *Server) describeDomainList(w http.ResponseWriter, k ddnstest.Key, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []map[string]any
	for _, d := range s.domains {
		if !k.Sees(d.Name) {
			continue
		}
		list = append(list, map[string]any{"DomainId": d.ID, "Name": d.Name, "Status": d.Status, "TTL": d.MinTTL,
			"CNAMESpeedup": "DISABLE", "DNSStatus": d.DNSStatus, "Grade": d.Grade, "GroupId": 1, "SearchEnginePush": "NO",
			"Remark": "", "Punycode": d.Name, "EffectiveDNS": d.NS, "GradeLevel": 0, "GradeTitle": "免费版", "IsVip": "NO",
			"RecordCount": 0, "CreatedOn": "2024-01-02 03:04:05", "UpdatedOn": "2024-01-02 03:04:05", "Owner": ""})
	}
	total := len(list)
	list = page(list, p.Offset, p.Limit, 20)
	if len(list) == 0 {
		replyError(w, "ResourceNotFound.NoDataOfDomain", "The domain list is empty.")
		return
	}
	reply(w, map[string]any{"DomainCountInfo": map[string]any{"DomainTotal": total, "AllTotal": total, "MineTotal": total,
		"ShareTotal": 0, "VipTotal": 0, "PauseTotal": 0, "ErrorTotal": 0, "LockTotal": 0, "SpamTotal": 0, "VipExpire": 0,
		"ShareOutTotal": 0, "GroupTotal": 0}, "DomainList": list})
}

func page[T any](all []T, offset, limit, def int) []T {
	if limit <= 0 {
		limit = def
	}
	start := min(max(offset, 0), len(all))
	return all[start:min(start+limit, len(all))]
}

func lineID(line string) string {
	if line == "默认" {
		return "0"
	}
	return "10=" + strconv.Itoa(len(line))
}

func (s *Server) describeRecordList(w http.ResponseWriter, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.domainLocked(p.Domain)
	if d == nil {
		replyError(w, "InvalidParameterValue.DomainNotExists", msgNoDomain)
		return
	}
	var list []map[string]any
	subdomains := map[string]bool{}
	for _, r := range s.records {
		if r.Domain != d.Name ||
			p.Subdomain != nil && *p.Subdomain != "" && r.Name != strings.ToLower(*p.Subdomain) ||
			p.RecordType != nil && *p.RecordType != "" && r.Type != strings.ToUpper(*p.RecordType) ||
			p.RecordLine != nil && *p.RecordLine != "" && r.Line != *p.RecordLine {
			continue
		}
		subdomains[r.Name] = true
		list = append(list, map[string]any{"RecordId": json.Number(r.ID), "Value": r.Value, "Status": r.Status,
			"UpdatedOn": r.Updated.Format(time.DateTime), "Name": r.Name, "Line": r.Line, "LineId": lineID(r.Line),
			"Type": r.Type, "Weight": nil, "MonitorStatus": "", "Remark": "", "TTL": r.TTL, "MX": r.MX, "DefaultNS": false})
	}
	total := len(list)
	list = page(list, p.Offset, p.Limit, 100)
	if len(list) == 0 {
		replyError(w, "ResourceNotFound.NoDataOfRecord", "The record list is empty.")
		return
	}
	reply(w, map[string]any{"RecordCountInfo": map[string]any{"SubdomainCount": len(subdomains), "ListCount": len(list), "TotalCount": total},
		"RecordList": list})
}

// writable returns the domain of p if its records may be changed, or
// writes the error.
func (s *Server) writableLocked(w http.ResponseWriter, p params) *Domain {
	d := s.domainLocked(p.Domain)
	switch {
	case d == nil:
		replyError(w, "InvalidParameterValue.DomainNotExists", msgNoDomain)
	case d.Status == "LOCK":
		replyError(w, "FailedOperation.DomainIsLocked", "This operation cannot be performed on a locked domain.")
	case d.Status == "SPAM":
		replyError(w, "FailedOperation.DomainIsSpam", "This operation cannot be performed on a blocked domain.")
	default:
		return d
	}
	return nil
}

// validate checks a record as DNSPod does and returns the error code and
// message, or "".
func validate(d *Domain, r *Record) (string, string) {
	switch r.Type {
	case "A", "AAAA":
		a, err := netip.ParseAddr(r.Value)
		if err != nil || a.Is4() != (r.Type == "A") || a.Is4In6() {
			return "InvalidParameter.RecordValueInvalid", "The record value is invalid."
		}
	case "TXT", "CNAME", "MX", "NS", "CAA", "SRV":
		if r.Value == "" {
			return "InvalidParameter.RecordValueInvalid", "The record value is invalid."
		}
	default:
		return "InvalidParameter.RecordTypeInvalid", "The record type is invalid."
	}
	if r.Line != "默认" && r.Line != "电信" && r.Line != "联通" && r.Line != "移动" && r.Line != "境外" {
		return "InvalidParameter.RecordLineInvalid", "The record line is invalid."
	}
	if r.TTL < d.MinTTL || r.TTL > 604800 {
		return "LimitExceeded.RecordTtlLimit", fmt.Sprintf("The TTL value of the record exceeds the limit: it must be between %d and 604800 for this plan.", d.MinTTL)
	}
	return "", ""
}

func (s *Server) writeRecord(w http.ResponseWriter, action string, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.writableLocked(w, p)
	if d == nil {
		return
	}
	var cur *Record
	if action == "ModifyRecord" {
		if p.RecordID == nil {
			replyError(w, "MissingParameter", "The request is missing a required parameter `RecordId`.")
			return
		}
		if r := s.records.Find(strconv.FormatUint(*p.RecordID, 10)); r != nil && r.Domain == d.Name {
			cur = r
		}
		if cur == nil {
			replyError(w, "InvalidParameter.RecordIdInvalid", "The record ID is incorrect.")
			return
		}
	}
	if p.RecordType == nil || p.RecordLine == nil || p.Value == nil {
		replyError(w, "MissingParameter", "The request is missing a required parameter: RecordType, RecordLine and Value are required.")
		return
	}
	now := s.opts.Time()
	next := Record{Domain: d.Name, Name: "@", Type: strings.ToUpper(*p.RecordType), Line: *p.RecordLine, Value: *p.Value, TTL: 600, Status: "ENABLE", Created: now, Updated: now}
	if cur != nil {
		next.ID, next.Created = cur.ID, cur.Created
	}
	if p.SubDomain != nil && *p.SubDomain != "" {
		next.Name = strings.ToLower(*p.SubDomain)
	}
	if p.TTL != nil {
		next.TTL = *p.TTL
	}
	if p.MX != nil {
		next.MX = *p.MX
	}
	if code, msg := validate(d, &next); code != "" {
		replyError(w, code, msg)
		return
	}
	if s.records.Duplicate(&next) {
		replyError(w, "InvalidParameter.DomainRecordExist", "The record already exists.")
		return
	}
	if cur == nil {
		next.ID = strconv.FormatUint(s.newIDLocked(), 10)
		s.records = append(s.records, &next)
	} else {
		*cur = next
	}
	s.CountWrite()
	reply(w, map[string]any{"RecordId": json.Number(next.ID)})
}

func (s *Server) deleteRecord(w http.ResponseWriter, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.writableLocked(w, p)
	if d == nil {
		return
	}
	if p.RecordID == nil {
		replyError(w, "MissingParameter", "The request is missing a required parameter `RecordId`.")
		return
	}
	id := strconv.FormatUint(*p.RecordID, 10)
	if r := s.records.Find(id); r == nil || r.Domain != d.Name {
		replyError(w, "InvalidParameter.RecordIdInvalid", "The record ID is incorrect.")
		return
	}
	s.records.Delete(id)
	s.CountWrite()
	reply(w, nil)
}
