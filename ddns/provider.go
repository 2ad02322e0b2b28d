package ddns

import (
	"context"
	"net/http"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/cloudflare"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/libdns/libdns"
)

// Provider writes the hostname's records. Both implementations
// (ddns/cloudflare and ddns/rfc2136) are full libdns providers (also
// RecordAppender and RecordDeleter for TXT), so the ACME DNS-01 solver can
// use the same value; the updater itself only ever calls SetRecords with
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

// CheckCloudflareToken checks a Cloudflare API token when the user saves
// it: that Cloudflare knows it and it is active, and, if hostname is not
// empty, that it can see the zone holding hostname. The error is a
// sentence for the user. client may be nil.
func CheckCloudflareToken(ctx context.Context, client *http.Client, token, hostname string) error {
	return cloudflare.New(token, apiclient.Options{HTTP: client}).Check(ctx, hostname)
}
