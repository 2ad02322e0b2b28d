// Package tencentcloudtest is homederp's one fake of DNSPod's Tencent
// Cloud API 3.0 (service dnspod, version 2021-03-23): an httptest server
// for the actions homederp calls (DescribeDomain, DescribeDomainList,
// DescribeRecordList, CreateRecord, ModifyRecord, DeleteRecord) and a DNS
// server that serves what the fake holds, as DNSPod's name servers would.
//
// It verifies the TC3-HMAC-SHA256 signature of every request as Tencent
// Cloud does (canonical request, credential scope, derived key, a clock
// skew of at most 5 minutes) and answers as Tencent Cloud does: always
// HTTP 200 with {"Response": {..., "RequestId": ...}}, and on failure
// {"Response": {"Error": {"Code", "Message"}, "RequestId"}} with the
// documented codes: AuthFailure.InvalidAuthorization,
// AuthFailure.SecretIdNotFound, AuthFailure.SignatureFailure,
// AuthFailure.SignatureExpire, AuthFailure.UnauthorizedOperation (a key
// whose CAM user may not write, or may not see the domain),
// InvalidParameterValue.DomainNotExists, ResourceNotFound.NoDataOfRecord,
// InvalidParameter.DomainRecordExist, InvalidParameter.RecordIdInvalid,
// LimitExceeded.RecordTtlLimit (TTL below the plan's 600 s),
// RequestLimitExceeded past the rate limit, InvalidAction. Every request is
// counted by action.
//
// Use it from any test:
//
//	tc := tencentcloudtest.New(t, tencentcloudtest.Options{})
//	tc.AddDomain("example.com")
//	id, key := tc.AddKey(tencentcloudtest.Key{})
//	client := tc.Client() // sends dnspod.tencentcloudapi.com to the fake
//	dnsAddr := tc.StartDNS(t, tencentcloudtest.DNSOptions{})
package tencentcloudtest

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/homederp/homederp/ddns/ddnstest"
)

// Options configure a fake: past RateLimit requests per key in a second
// (0 = 20, DNSPod's limit for its write actions) it answers
// RequestLimitExceeded, and it checks X-TC-Timestamp against Now.
type Options = ddnstest.KeyPairOptions

// Key is a Tencent Cloud API key the fake accepts. A ReadOnly one belongs
// to a CAM user with QcloudDNSPodReadOnlyAccess, whose writes answer
// AuthFailure.UnauthorizedOperation.
type Key = ddnstest.Key

// Domain is a domain the fake holds.
type Domain struct {
	ID        uint64
	Name      string   // e.g. "example.com"
	Status    string   // "ENABLE" (default), "PAUSE", "SPAM" or "LOCK"
	DNSStatus string   // "" (default) or "DNSERROR": the registrar does not point at DNSPod
	Grade     string   // "DP_FREE" (default)
	NS        []string // "f1g1ns1.dnspod.net", "f1g1ns2.dnspod.net"
	MinTTL    int      // 600 on the free plan
}

// Record is a DNS record as DNSPod stores it; its Line is "默认" (the
// default line), "电信", ...
type Record = ddnstest.Record

// Fault is a scripted answer that replaces the next requests' real ones.
type Fault struct {
	// Code and Message make an API error answer (HTTP 200), e.g.
	// "RequestLimitExceeded" or "InternalError".
	Code, Message string
	// Status, Body and ContentType make a raw HTTP answer instead, as a
	// proxy in the way would, e.g. 502 and an HTML page.
	Status      int
	Body        string
	ContentType string // "" = text/html
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// Fake is the API server, its client, the request counts by action
	// (e.g. "ModifyRecord"), the faults and the DNS side.
	ddnstest.Fake[Fault]

	opts Options
	keys ddnstest.Keys

	mu      sync.Mutex
	domains []*Domain
	records ddnstest.Records
	nextID  uint64 // of domains and records
}

var _ ddnstest.KeyPairFake = (*Server)(nil)

// New starts a fake and stops it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.RateLimit <= 0 {
		opts.RateLimit = 20
	}
	s := &Server{opts: opts, nextID: 1000}
	s.Start(t, ddnstest.Serving{Host: "dnspod.tencentcloudapi.com", Listener: opts.Listener, API: http.HandlerFunc(s.serveHTTP), Zones: s.authZones, Logf: opts.Logf})
	return s
}

// AddKey registers an API key and returns its SecretId ("AKID" and 32
// letters and digits) and SecretKey (32).
func (s *Server) AddKey(k Key) (secretID, secretKey string) {
	secretID, secretKey = "AKID"+ddnstest.RandString(32, ddnstest.Alnum), ddnstest.RandString(32, ddnstest.Alnum)
	s.keys.Add(secretID, secretKey, k)
	return secretID, secretKey
}

// DisableKey disables a key, as the user would in the console.
func (s *Server) DisableKey(secretID string) { s.keys.Disable(secretID) }

func (s *Server) newIDLocked() uint64 {
	s.nextID++
	return s.nextID
}

// AddDomain adds an enabled domain on the free plan.
func (s *Server) AddDomain(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains = append(s.domains, &Domain{ID: s.newIDLocked(), Name: strings.ToLower(strings.TrimSuffix(name, ".")), Status: "ENABLE", Grade: "DP_FREE",
		NS: []string{"f1g1ns1.dnspod.net", "f1g1ns2.dnspod.net"}, MinTTL: 600})
}

// SetDomain changes a domain, e.g. its Status or DNSStatus.
func (s *Server) SetDomain(name string, change func(*Domain)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.domainLocked(name); d != nil {
		change(d)
	}
}

// AddRecord stores a record on the default line directly (as if made in
// the console) and returns its ID.
func (s *Server) AddRecord(domain, name, typ, value string, ttl int) string {
	return s.AddRecordOnLine(domain, name, typ, value, ttl, "默认")
}

// AddRecordOnLine stores a record on a resolution line, e.g. "电信".
func (s *Server) AddRecordOnLine(domain, name, typ, value string, ttl int, line string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.domainLocked(domain)
	if d == nil {
		panic("tencentcloudtest: no domain " + domain)
	}
	now := s.opts.Time()
	r := &Record{ID: strconv.FormatUint(s.newIDLocked(), 10), Domain: d.Name, Name: strings.ToLower(name), Type: strings.ToUpper(typ),
		Line: line, Value: value, TTL: ttl, Status: "ENABLE", Created: now, Updated: now}
	s.records = append(s.records, r)
	return r.ID
}

// Records returns copies of the records of name (relative or "@") and
// type ("" = any) in domain, on every line.
func (s *Server) Records(domain, name, typ string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records.Copies(domain, name, typ)
}

func (s *Server) domainLocked(name string) *Domain {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, d := range s.domains {
		if d.Name == name {
			return d
		}
	}
	return nil
}
