package ddns

import (
	"context"

	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/libdns/libdns"
)

// Provider writes the hostname's records. Every implementation
// (ddns/cloudflare, ddns/tencentcloud, ddns/alidns, ddns/rfc2136) is a
// full libdns provider (also RecordAppender and RecordDeleter for TXT), so
// the ACME DNS-01 solver can use the same value; the updater itself only ever calls SetRecords with
// one A and/or one AAAA record for the configured name.
type Provider interface {
	// ZoneFor returns the zone apex holding hostname, e.g.
	// "example.com." for "derp.example.com".
	ZoneFor(ctx context.Context, hostname string) (string, error)
	libdns.RecordSetter
}

// Detector finds the public addresses; *detect.Detector is one.
type Detector interface {
	Detect(ctx context.Context, v4, v6 bool) detect.Result
}

// Verifier asks the zone's authoritative servers; *authdns.Checker is
// one.
type Verifier interface {
	Served(ctx context.Context, hostname string, v4, v6 bool) (*authdns.Served, error)
}
