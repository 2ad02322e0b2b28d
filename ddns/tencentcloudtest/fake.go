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
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/ddnstest"
)

// Options configure a fake.
type Options struct {
	// Listener to serve the API on; nil = 127.0.0.1:0. A test bed passes a
	// listener created inside a network namespace.
	Listener net.Listener
	// RateLimit is the number of requests per key allowed in any second
	// before RequestLimitExceeded; 0 = 20, DNSPod's limit for its write
	// actions.
	RateLimit int
	// Now is the fake's clock, against which X-TC-Timestamp is checked;
	// nil = time.Now. A test sets it off to play a box with a wrong clock.
	Now func() time.Time
	// Logf logs every request; nil = quiet.
	Logf func(format string, args ...any)
}

// Key is a Tencent Cloud API key the fake accepts.
type Key struct {
	Disabled bool // the key was disabled or deleted in the console
	// ReadOnly keys belong to a CAM user with read access only
	// (QcloudDNSPodReadOnlyAccess): writes answer
	// AuthFailure.UnauthorizedOperation.
	ReadOnly bool
	// Domains limits the key to these domains; nil = every domain.
	Domains []string
}

type keyState struct {
	Key
	secret string
	window []time.Time
}

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

// Record is a DNS record as DNSPod stores it.
type Record struct {
	RecordID  uint64
	Domain    string // e.g. "example.com"
	Name      string // relative, "@" for the apex, e.g. "derp"
	Type      string
	Line      string // "默认" (the default line), "电信", ...
	Value     string
	TTL       int
	MX        int
	Status    string // "ENABLE" or "DISABLE"
	UpdatedOn time.Time
}

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
	URL string // e.g. http://127.0.0.1:40000

	// Calls counts requests by action (e.g. "ModifyRecord") and
	// successful record changes.
	ddnstest.Calls
	// Faults replace the next answers (FailNext) or all (SetDown).
	ddnstest.Faults[Fault]
	// DNSSide serves what the fake holds (see StartDNS).
	ddnstest.DNSSide

	srv  *httptest.Server
	opts Options

	mu      sync.Mutex
	keys    map[string]*keyState
	domains []*Domain
	records []*Record
	nextID  uint64
}

// New starts a fake and stops it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.RateLimit <= 0 {
		opts.RateLimit = 20
	}
	s := &Server{opts: opts, keys: map[string]*keyState{}, nextID: 1000}
	s.srv = ddnstest.ServeAPI(t, opts.Listener, http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	return s
}

// Close stops the API server: later calls get "connection refused", as
// when Tencent Cloud is unreachable.
func (s *Server) Close() { s.srv.Close() }

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// AddKey registers an API key and returns its SecretId ("AKID" and 32
// letters and digits) and SecretKey (32).
func (s *Server) AddKey(k Key) (secretID, secretKey string) {
	secretID, secretKey = "AKID"+ddnstest.RandString(32, alnum), ddnstest.RandString(32, alnum)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[secretID] = &keyState{Key: k, secret: secretKey}
	return secretID, secretKey
}

// DisableKey disables a key, as the user would in the console.
func (s *Server) DisableKey(secretID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[secretID]; k != nil {
		k.Disabled = true
	}
}

// AddDomain adds an enabled domain on the free plan.
func (s *Server) AddDomain(name string) *Domain {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	d := &Domain{ID: s.nextID, Name: strings.ToLower(strings.TrimSuffix(name, ".")), Status: "ENABLE", Grade: "DP_FREE",
		NS: []string{"f1g1ns1.dnspod.net", "f1g1ns2.dnspod.net"}, MinTTL: 600}
	s.domains = append(s.domains, d)
	return d
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
func (s *Server) AddRecord(domain, name, typ, value string, ttl int) uint64 {
	return s.AddRecordOnLine(domain, name, typ, value, ttl, "默认")
}

// AddRecordOnLine stores a record on a resolution line, e.g. "电信".
func (s *Server) AddRecordOnLine(domain, name, typ, value string, ttl int, line string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.domainLocked(domain)
	if d == nil {
		panic("tencentcloudtest: no domain " + domain)
	}
	s.nextID++
	s.records = append(s.records, &Record{RecordID: s.nextID, Domain: d.Name, Name: strings.ToLower(name), Type: strings.ToUpper(typ),
		Line: line, Value: value, TTL: ttl, Status: "ENABLE", UpdatedOn: s.now()})
	return s.nextID
}

// Records returns copies of the records of name (relative or "@") and
// type ("" = any) in domain, on every line.
func (s *Server) Records(domain, name, typ string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.records {
		if r.Domain == domain && r.Name == strings.ToLower(name) && (typ == "" || r.Type == typ) {
			out = append(out, *r)
		}
	}
	return out
}

// AllRecords returns copies of every record.
func (s *Server) AllRecords() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.records))
	for _, r := range s.records {
		out = append(out, *r)
	}
	return out
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

// Client returns an HTTP client that sends requests for
// https://dnspod.tencentcloudapi.com to the fake.
func (s *Server) Client() *http.Client { return s.ClientDialing(nil) }

// ClientDialing is Client with a custom dialer, e.g. one that dials from
// inside a test bed's namespace.
func (s *Server) ClientDialing(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	return ddnstest.APIClient("dnspod.tencentcloudapi.com", s.URL, dial)
}
