package ddns

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/homederp/homederp/ddns/alidns"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/cloudflare"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/homederp/homederp/ddns/records"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/ddns/tencentcloud"
	"github.com/libdns/libdns"
	"github.com/miekg/dns"
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

// CheckKind says why a DNS provider did not accept a credential check, so
// that the user is told what to fix: the box's connection, the credential,
// or what the credential may do.
type CheckKind string

const (
	// CheckUnreachable: the provider gave no usable answer (no route,
	// DNS failure, timeout, TLS trouble, a proxy's page, the provider's
	// own 5xx or rate limit). The credential itself was not judged.
	CheckUnreachable CheckKind = "unreachable"
	// CheckBadCredential: the provider does not accept the credential
	// (an unknown, disabled or expired token or key, a signature made
	// with the wrong secret, a TSIG key whose name, algorithm or secret
	// is wrong).
	CheckBadCredential CheckKind = "bad-credential"
	// CheckRefused: the provider accepts the credential but refuses what
	// homederp needs it for (permissions, a zone it cannot see).
	CheckRefused CheckKind = "refused"
)

// CheckError is a failed credential check. Its text is the provider
// package's sentence for the user; Kind classifies it, or is "" when the
// failure fits none of the kinds (a credential of the wrong shape, found
// before any call; a clock the provider says is off).
type CheckError struct {
	Kind CheckKind
	Err  error
}

func (e *CheckError) Error() string { return e.Err.Error() }
func (e *CheckError) Unwrap() error { return e.Err }

// ClassifyCheck wraps the error of a provider's credential check in a
// *CheckError (nil stays nil). It is the one place that knows every
// provider's error types: a new provider's errors are added here.
func ClassifyCheck(err error) error {
	if err == nil {
		return nil
	}
	return &CheckError{Kind: checkKind(err), Err: err}
}

func checkKind(err error) CheckKind {
	var (
		rateLimit *apiclient.RateLimitError
		trouble   *apiclient.TroubleError
		garbage   *apiclient.GarbageError
		cfAPI     *cloudflare.APIError
		cfToken   *cloudflare.TokenError
		tcAPI     *tencentcloud.APIError
		aliAPI    *alidns.APIError
		noZone    *records.NoZoneError
		rcode     *rfc2136.RcodeError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &rateLimit), errors.As(err, &trouble), errors.As(err, &garbage):
		return CheckUnreachable
	case errors.As(err, &cfToken):
		return CheckBadCredential
	case errors.As(err, &cfAPI):
		switch {
		case cfAPI.Status == http.StatusTooManyRequests || cfAPI.Status >= 500:
			return CheckUnreachable
		case cfAPI.Status == http.StatusUnauthorized || slices.ContainsFunc(cfAPI.Codes(), func(c int) bool { return slices.Contains(cloudflareTokenCodes, c) }):
			return CheckBadCredential
		}
		return CheckRefused
	case errors.As(err, &tcAPI):
		switch {
		case tcAPI.Temporary():
			return CheckUnreachable
		case slices.Contains(tencentKeyCodes, tcAPI.Code):
			return CheckBadCredential
		case tcAPI.Code == "AuthFailure.SignatureExpire":
			return "" // the box's clock, which the message explains
		}
		return CheckRefused
	case errors.As(err, &aliAPI):
		switch {
		case aliAPI.Temporary():
			return CheckUnreachable
		case slices.Contains(aliKeyCodes, aliAPI.Code):
			return CheckBadCredential
		case strings.HasPrefix(aliAPI.Code, "InvalidTimeStamp"):
			return ""
		}
		return CheckRefused
	case errors.As(err, &noZone):
		return CheckRefused
	case errors.Is(err, dns.ErrAuth), errors.Is(err, dns.ErrSig), errors.Is(err, dns.ErrSecret),
		errors.Is(err, dns.ErrKeyAlg), errors.Is(err, dns.ErrTime):
		return CheckBadCredential
	case errors.As(err, &rcode):
		if rcode.Rcode == dns.RcodeNotAuth {
			return CheckBadCredential
		}
		return CheckRefused
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return CheckUnreachable
	}
	return ""
}

// The providers' codes for a credential they do not accept.
var (
	// Cloudflare: unknown or malformed tokens, the Global API Key.
	cloudflareTokenCodes = []int{1000, 1001, 6003, 6100, 6103, 6111, 9106, 9109}
	// Tencent Cloud: an unknown SecretId, a SecretKey of another key.
	tencentKeyCodes = []string{"AuthFailure.SecretIdNotFound", "AuthFailure.InvalidSecretId", "AuthFailure.SignatureFailure", "AuthFailure.InvalidAuthorization"}
	// Alibaba Cloud: an unknown or disabled AccessKey, a secret of another.
	aliKeyCodes = []string{"InvalidAccessKeyId.NotFound", "InvalidAccessKeyId", "InvalidAccessKeyId.Inactive", "SignatureDoesNotMatch", "IncompleteSignature"}
)
