// Package alidnstest is homederp's one fake of Alibaba Cloud DNS (AliDNS,
// API version 2015-01-09): an httptest server for the RPC actions homederp
// calls (DescribeDomainInfo, DescribeDomains, DescribeSubDomainRecords,
// AddDomainRecord, UpdateDomainRecord, DeleteDomainRecord) and a DNS
// server that serves what the fake holds, as AliDNS's name servers would.
//
// It verifies the V3 signature (ACS3-HMAC-SHA256) of every request as
// Alibaba Cloud does (canonical request, signed headers, payload hash,
// date within 15 minutes, a nonce used once) and answers as Alibaba
// Cloud does: JSON with "RequestId" on success, and on failure an HTTP
// 4xx/5xx status with {"RequestId", "HostId", "Code", "Message",
// "Recommend"} and the documented codes: IncompleteSignature,
// SignatureDoesNotMatch, SignatureNonceUsed, InvalidTimeStamp.Expired,
// InvalidAccessKeyId.NotFound (404), InvalidAccessKeyId.Inactive,
// Forbidden.RAM (403, a RAM user without write access or without the
// domain), InvalidDomainName.NoExist, DomainRecordDuplicate,
// DomainRecordNotBelongToUser, QuotaExceeded.TTL (below the plan's 600 s),
// Throttling.User past the rate limit, InvalidAction.NotFound. Every
// request is counted by action.
//
// Use it from any test:
//
//	ali := alidnstest.New(t, alidnstest.Options{})
//	ali.AddDomain("example.com")
//	id, secret := ali.AddKey(alidnstest.Key{})
//	client := ali.Client() // sends alidns.aliyuncs.com to the fake
//	dnsAddr := ali.StartDNS(t, alidnstest.DNSOptions{})
package alidnstest

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/homederp/homederp/ddns/ddnstest"
)

// Options configure a fake: past RateLimit requests per AccessKey in a
// second (0 = 20) it answers Throttling.User, and it checks x-acs-date
// against Now.
type Options = ddnstest.KeyPairOptions

// Key is an AccessKey the fake accepts. A ReadOnly one belongs to a RAM
// user with AliyunDNSReadOnlyAccess, whose writes answer Forbidden.RAM.
type Key = ddnstest.Key

// Domain is a domain the fake holds.
type Domain struct {
	ID          string
	Name        string   // e.g. "example.com"
	VersionCode string   // "mianfei" (the free plan, default)
	MinTTL      int      // 600 on the free plan
	NS          []string // "ns1.alidns.com", "ns2.alidns.com"
}

// Record is a DNS record as AliDNS stores it; its Name is AliDNS's RR and
// its Line one of "default", "telecom", "unicom", "mobile", "oversea".
type Record = ddnstest.Record

// Fault is a scripted answer that replaces the next requests' real ones.
type Fault struct {
	Status int // e.g. 503; 0 with a Code = 400
	// Code and Message make an API error answer, e.g.
	// "ServiceUnavailable" or "Throttling.User".
	Code, Message string
	// Body and ContentType make a raw answer instead, as a proxy in the
	// way would.
	Body        string
	ContentType string // "" = text/html
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// Fake is the API server, its client, the request counts by action
	// (e.g. "UpdateDomainRecord"), the faults and the DNS side.
	ddnstest.Fake[Fault]

	opts Options
	keys ddnstest.Keys

	mu      sync.Mutex
	nonces  map[string]bool
	domains []*Domain
	records ddnstest.Records
	nextID  int64
}

var _ ddnstest.KeyPairFake = (*Server)(nil)

// New starts a fake and stops it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.RateLimit <= 0 {
		opts.RateLimit = 20
	}
	s := &Server{opts: opts, nonces: map[string]bool{}, nextID: 1978593525000}
	s.Start(t, ddnstest.Serving{Host: "alidns.aliyuncs.com", Listener: opts.Listener, API: http.HandlerFunc(s.serveHTTP), Zones: s.authZones, Logf: opts.Logf})
	return s
}

// AddKey registers an AccessKey and returns its ID ("LTAI" and 20 letters
// and digits) and secret (30).
func (s *Server) AddKey(k Key) (id, secret string) {
	id, secret = "LTAI"+ddnstest.RandString(20, ddnstest.Alnum), ddnstest.RandString(30, ddnstest.Alnum)
	s.keys.Add(id, secret, k)
	return id, secret
}

// DisableKey disables an AccessKey, as the user would in the RAM console.
func (s *Server) DisableKey(id string) { s.keys.Disable(id) }

func (s *Server) newIDLocked() string {
	s.nextID++
	return strconv.FormatInt(s.nextID, 10)
}

// AddDomain adds a domain on the free plan.
func (s *Server) AddDomain(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const hex = "abcdef0123456789"
	s.domains = append(s.domains, &Domain{ID: ddnstest.RandString(8, hex) + "-" + ddnstest.RandString(4, hex), Name: strings.ToLower(strings.TrimSuffix(name, ".")),
		VersionCode: "mianfei", MinTTL: 600, NS: []string{"ns1.alidns.com", "ns2.alidns.com"}})
}

// AddRecord stores a record on the default line directly (as if made in
// the console) and returns its ID.
func (s *Server) AddRecord(domain, rr, typ, value string, ttl int) string {
	return s.AddRecordOnLine(domain, rr, typ, value, ttl, "default")
}

// AddRecordOnLine stores a record on a resolution line, e.g. "telecom".
func (s *Server) AddRecordOnLine(domain, rr, typ, value string, ttl int, line string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.domainLocked(domain)
	if d == nil {
		panic("alidnstest: no domain " + domain)
	}
	now := s.opts.Time()
	r := &Record{ID: s.newIDLocked(), Domain: d.Name, Name: strings.ToLower(rr), Type: strings.ToUpper(typ), Value: value, TTL: ttl,
		Line: line, Status: "ENABLE", Created: now, Updated: now}
	s.records = append(s.records, r)
	return r.ID
}

// Records returns copies of the records of rr (relative or "@") and type
// ("" = any) in domain, on every line.
func (s *Server) Records(domain, rr, typ string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records.Copies(domain, rr, typ)
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
