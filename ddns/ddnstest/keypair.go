package ddnstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// KeyPairFake is what the fakes of the cloud DNS providers whose keys are
// pairs (tencentcloudtest for DNSPod, alidnstest for AliDNS) have in
// common, so that a test can tell the same story at each of them.
type KeyPairFake interface {
	// AddDomain adds a domain on the free plan, e.g. "example.com".
	AddDomain(name string)
	// AddRecord stores a record on the default line, as if made in the
	// console, and returns its ID; AddRecordOnLine on another line.
	AddRecord(domain, name, typ, value string, ttl int) string
	AddRecordOnLine(domain, name, typ, value string, ttl int, line string) string
	// Records returns copies of the records of name (relative or "@") and
	// type ("" = any) in domain, on every line.
	Records(domain, name, typ string) []Record
	// AddKey registers a key and returns its ID and secret; DisableKey
	// disables it.
	AddKey(Key) (id, secret string)
	DisableKey(id string)
	// StartDNS starts the DNS side (see Authority).
	StartDNS(t testing.TB, o AuthorityOptions) netip.AddrPort

	Client() *http.Client
	ClientDialing(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client
	Requests(route ...string) int
	RequestsByRoute() map[string]int
	Writes() int
	Close()
}

// KeyPairOptions configure a KeyPairFake.
type KeyPairOptions struct {
	// Listener to serve the API on; nil = 127.0.0.1:0. A test bed passes a
	// listener created inside a network namespace.
	Listener net.Listener
	// RateLimit is the number of requests per key allowed in any second
	// before the vendor's throttling error; 0 = 20.
	RateLimit int
	// Now is the fake's clock, against which the time a request was signed
	// is checked; nil = time.Now. A test sets it off to play a box with a
	// wrong clock.
	Now func() time.Time
	// Logf logs every request; nil = quiet.
	Logf func(format string, args ...any)
}

// Time returns the fake's time now.
func (o KeyPairOptions) Time() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Record is a record as DNSPod and AliDNS store it: named relative to its
// domain, on a resolution line.
type Record struct {
	ID      string // e.g. "1978593525779"
	Domain  string // e.g. "example.com"
	Name    string // relative, "@" for the apex (AliDNS's "RR"), e.g. "derp"
	Type    string // e.g. "AAAA"
	Value   string // e.g. "2001:db8::1"; TXT without quotes
	TTL     int    // seconds, e.g. 600
	Line    string // e.g. "default" (AliDNS) or "默认" (DNSPod), "telecom", "电信"
	Status  string // "ENABLE" or "DISABLE"
	MX      int    // an MX record's preference
	Created time.Time
	Updated time.Time
}

// Records are the records a fake holds. Its owner's lock guards them.
type Records []*Record

// Copies returns copies of the records of name (relative or "@") and type
// ("" = any) in domain, on every line.
func (rs Records) Copies(domain, name, typ string) []Record {
	var out []Record
	for _, r := range rs {
		if r.Domain == domain && r.Name == strings.ToLower(name) && (typ == "" || r.Type == typ) {
			out = append(out, *r)
		}
	}
	return out
}

// Find returns the record with ID id, or nil.
func (rs Records) Find(id string) *Record {
	for _, r := range rs {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// Delete deletes the record with ID id and reports whether there was one.
func (rs *Records) Delete(id string) bool {
	for i, r := range *rs {
		if r.ID == id {
			*rs = slices.Delete(*rs, i, i+1)
			return true
		}
	}
	return false
}

// Duplicate reports whether another record (another ID) has r's domain,
// name, type, line and value, which both providers refuse.
func (rs Records) Duplicate(r *Record) bool {
	for _, o := range rs {
		if o.ID != r.ID && o.Domain == r.Domain && o.Name == r.Name && o.Type == r.Type && o.Line == r.Line && o.Value == r.Value {
			return true
		}
	}
	return false
}

// Served are the records of domain that its name servers serve: the
// enabled ones of line, the default line.
func (rs Records) Served(domain, line string) []AuthRR {
	var out []AuthRR
	for _, r := range rs {
		if r.Domain != domain || r.Line != line || r.Status != "ENABLE" {
			continue
		}
		name := domain
		if r.Name != "@" {
			name = r.Name + "." + domain
		}
		out = append(out, AuthRR{Name: name, Type: r.Type, Value: r.Value, TTL: uint32(r.TTL)})
	}
	return out
}

// OnLine describes the records of recs on line as "value ttl N", e.g.
// "203.0.113.9 ttl 600", for comparing what a fake holds with what a test
// wants.
func OnLine(recs []Record, line string) []string {
	var out []string
	for _, r := range recs {
		if r.Line == line {
			out = append(out, fmt.Sprintf("%s ttl %d", r.Value, r.TTL))
		}
	}
	return out
}
