// Package cloudflaretest is homederp's one fake of Cloudflare: an httptest
// server for the v4 API endpoints that github.com/libdns/cloudflare v0.2.2
// calls (plus /user/tokens/verify), and a DNS server that serves what the
// fake holds, the way Cloudflare's authoritative servers would.
//
// It answers with Cloudflare's JSON envelope ("success", "errors" with
// codes and error chains, "messages", "result", "result_info" with
// pagination) and Cloudflare's error codes: 6003/6111 for a malformed
// Authorization header, 1000 for an unknown token at /user/tokens/verify,
// 9109 for an unknown token elsewhere, 10000 for a token without
// permission, 81058 for an identical record, 81053/81054 for name
// conflicts, 9021 for a bad TTL, 971 with HTTP 429 and Retry-After past the
// rate limit, 7003 for an unknown zone. A record can be proxied, in which
// case the DNS side answers with Cloudflare anycast addresses. Every request
// is counted.
//
// Use it from any test:
//
//	cf := cloudflaretest.New(t, cloudflaretest.Options{})
//	zone := cf.AddZone("example.com")
//	token := cf.AddToken(cloudflaretest.Token{})
//	client := cf.Client() // an *http.Client that sends api.cloudflare.com to the fake
//	dnsAddr := cf.StartDNS(t) // serves example.com from what the API holds
package cloudflaretest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
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
	// RateLimit is the number of requests per token allowed in any 5
	// minute window before 429; 0 = Cloudflare's 1200.
	RateLimit int
	// RetryAfter is the Retry-After (seconds) sent with a rate-limit 429;
	// 0 = 60.
	RetryAfter int
	// Logf logs every request; nil = quiet.
	Logf func(format string, args ...any)
}

// Token is an API token the fake accepts.
type Token struct {
	// Status is "active" (default), "disabled" or "expired".
	Status string
	// Zones limits the token to these zone names (e.g. "example.com");
	// nil = every zone.
	Zones []string
	// ReadOnly tokens can read zones and records but not change them
	// (Cloudflare answers 10000 Authentication error).
	ReadOnly bool
}

// Zone is a zone the fake holds.
type Zone struct {
	ID          string   // 32 hex digits
	Name        string   // e.g. "example.com"
	Status      string   // "active" (default) or "pending"
	NameServers []string // e.g. "ada.ns.cloudflare.com"
}

// Record is a DNS record as Cloudflare stores it.
type Record struct {
	ID         string    `json:"id"`
	ZoneID     string    `json:"zone_id"`
	ZoneName   string    `json:"zone_name"`
	Name       string    `json:"name"` // FQDN without trailing dot, e.g. "derp.example.com"
	Type       string    `json:"type"`
	Content    string    `json:"content"`
	Proxiable  bool      `json:"proxiable"`
	Proxied    bool      `json:"proxied"`
	TTL        int       `json:"ttl"` // 1 = automatic
	Locked     bool      `json:"locked"`
	Comment    *string   `json:"comment"`
	Tags       []string  `json:"tags"`
	Settings   struct{}  `json:"settings"`
	Meta       struct{}  `json:"meta"`
	CreatedOn  time.Time `json:"created_on"`
	ModifiedOn time.Time `json:"modified_on"`
}

// Fault is a scripted answer that replaces the next requests' real ones.
type Fault struct {
	Status     int    // e.g. 429 or 503
	RetryAfter string // Retry-After header value, e.g. "2"; "" = none
	// Body replaces Cloudflare's JSON; "" = the proper error envelope for
	// Status.
	Body        string
	ContentType string // "" = application/json
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// Fake is the API server, its client, the request counts by "METHOD
	// route" (e.g. "PATCH /zones/:zone/dns_records/:id"), the faults and
	// the DNS side.
	ddnstest.Fake[Fault]

	opts Options

	mu      sync.Mutex
	tokens  map[string]*Token
	zones   []*Zone
	records []*Record
	window  map[string]*ddnstest.Window // per token, for the rate limit
}

// New starts a fake and stops it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{
		opts:   opts,
		tokens: map[string]*Token{},
		window: map[string]*ddnstest.Window{},
	}
	s.Start(t, ddnstest.Serving{Host: "api.cloudflare.com", Listener: opts.Listener, API: http.HandlerFunc(s.serveHTTP), Zones: s.authZones, Logf: opts.Logf})
	return s
}

func randHex(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// AddToken registers a token and returns its 40-character secret.
func (s *Server) AddToken(tok Token) string {
	secret := ddnstest.RandString(40, ddnstest.Alnum+"_-")
	if tok.Status == "" {
		tok.Status = "active"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[secret] = &tok
	return secret
}

// AddZone adds an active zone with Cloudflare-style name servers.
func (s *Server) AddZone(name string) *Zone {
	z := &Zone{ID: randHex(32), Name: strings.ToLower(strings.TrimSuffix(name, ".")), Status: "active",
		NameServers: []string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zones = append(s.zones, z)
	return z
}

// SetZoneStatus changes a zone's status, e.g. to "pending".
func (s *Server) SetZoneStatus(name, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z := s.zoneByNameLocked(name); z != nil {
		z.Status = status
	}
}

// AddRecord stores a record directly (as if made in the dashboard) and
// returns its ID. name may be relative to the zone or "@".
func (s *Server) AddRecord(zone, name, typ, content string, ttl int, proxied bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneByNameLocked(zone)
	if z == nil {
		panic("cloudflaretest: no zone " + zone)
	}
	now := time.Now().UTC()
	r := &Record{ID: randHex(32), ZoneID: z.ID, ZoneName: z.Name, Name: fqdn(name, z.Name), Type: strings.ToUpper(typ),
		Content: content, TTL: ttl, Proxied: proxied, Proxiable: proxiable(typ), Tags: []string{}, CreatedOn: now, ModifiedOn: now}
	if proxied {
		r.TTL = 1
	}
	s.records = append(s.records, r)
	return r.ID
}

// SetProxied flips the proxy flag of every record of name and type, as a
// user clicking the orange cloud would.
func (s *Server) SetProxied(zone, name, typ string, proxied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneByNameLocked(zone)
	for _, r := range s.records {
		if z != nil && r.ZoneID == z.ID && r.Name == fqdn(name, z.Name) && r.Type == typ {
			r.Proxied = proxied
			if proxied {
				r.TTL = 1
			}
		}
	}
}

// Records returns copies of the records of name (relative, "@" or FQDN)
// and type ("" = any) in zone.
func (s *Server) Records(zone, name, typ string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneByNameLocked(zone)
	var out []Record
	for _, r := range s.records {
		if z != nil && r.ZoneID == z.ID && r.Name == fqdn(name, z.Name) && (typ == "" || r.Type == typ) {
			out = append(out, *r)
		}
	}
	return out
}

func (s *Server) zoneByNameLocked(name string) *Zone {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, z := range s.zones {
		if z.Name == name {
			return z
		}
	}
	return nil
}

// fqdn makes a record name absolute within zone, without trailing dot.
// Cloudflare accepts relative names, "@" and full names in request bodies.
func fqdn(name, zone string) string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	switch {
	case name == "" || name == "@":
		return zone
	case name == zone || strings.HasSuffix(name, "."+zone):
		return name
	}
	return name + "." + zone
}

func proxiable(typ string) bool {
	switch strings.ToUpper(typ) {
	case "A", "AAAA", "CNAME":
		return true
	}
	return false
}
