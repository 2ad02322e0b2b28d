// Package cloudflare updates DNS records through Cloudflare's v4 API with
// github.com/libdns/cloudflare, behind homederp's API client
// (ddns/apiclient): timeouts, a request budget far below Cloudflare's 1200
// requests per 5 minutes (a limit shared with the user's dashboard and
// every other tool, whose excess blocks all calls for 5 minutes), backoff
// on 429 and 5xx that honours Retry-After, and Cloudflare's error codes
// kept so that they can be explained in plain words. libdns/cloudflare
// v0.2.2 has none of that and reports errors as formatted strings.
package cloudflare

import (
	"net/http"

	"github.com/homederp/homederp/ddns/apiclient"
)

// BaseURL is Cloudflare's API root, the one libdns/cloudflare uses. Tests
// redirect it with the http.Client they pass (see cloudflaretest).
const BaseURL = "https://api.cloudflare.com/client/v4"

// vendor tells apiclient how Cloudflare signals trouble: HTTP 429 with
// Retry-After when rate-limited, 5xx when it has trouble, 4xx with the
// JSON envelope's error codes otherwise.
var vendor = apiclient.Vendor{Name: "Cloudflare", Classify: classify}

func classify(_ *http.Request, status int, body []byte) apiclient.Verdict {
	switch {
	case status == http.StatusTooManyRequests:
		return apiclient.Verdict{Retry: true, Throttled: true, Err: decodeError(status, body)}
	case status >= 500:
		return apiclient.Verdict{Retry: true, Err: decodeError(status, body)}
	case status >= 400:
		// libdns/cloudflare returns errors from the HTTP client as
		// they are, so the APIError reaches explain intact.
		return apiclient.Verdict{Err: decodeError(status, body)}
	}
	return apiclient.Verdict{}
}
