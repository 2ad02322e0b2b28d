package cloudflare

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/homederp/homederp/internal/usermsg"
)

// ErrorItem is one entry of the "errors" array of Cloudflare's response
// envelope.
type ErrorItem struct {
	Code       int         `json:"code"`    // e.g. 9109
	Message    string      `json:"message"` // e.g. "Invalid access token"
	ErrorChain []ErrorItem `json:"error_chain,omitempty"`
}

// APIError is a failed Cloudflare API call. Its Error text is meant for
// the user: it says what to do, not only what went wrong.
type APIError struct {
	Status int // HTTP status, e.g. 403
	Errors []ErrorItem
	Zone   string // the zone involved, if known, e.g. "example.com"
}

// NameZone names the zone involved (see records.Explain).
func (e *APIError) NameZone(zone string) { e.Zone = zone }

// Codes lists every error code, including those in error chains.
func (e *APIError) Codes() []int {
	var out []int
	var walk func([]ErrorItem)
	walk = func(items []ErrorItem) {
		for _, it := range items {
			out = append(out, it.Code)
			walk(it.ErrorChain)
		}
	}
	walk(e.Errors)
	return out
}

// Has reports whether code is among the error codes.
func (e *APIError) Has(code int) bool { return slices.Contains(e.Codes(), code) }

// Raw is Cloudflare's status, codes and messages, e.g. "HTTP 403: 10000
// Authentication error".
func (e *APIError) Raw() string {
	var parts []string
	for _, it := range e.Errors {
		s := fmt.Sprintf("%d %s", it.Code, it.Message)
		for _, c := range it.ErrorChain {
			s += fmt.Sprintf(" (%d %s)", c.Code, c.Message)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.Join(parts, "; "))
}

// The messages of APIError, by their ID in the web UI's catalogues
// (webui/locales).
const (
	msgThrottled  = "provider.cloudflare.throttled"
	msgFormat     = "provider.cloudflare.format"
	msgToken      = "provider.cloudflare.token"
	msgPermission = "provider.cloudflare.permission"
	msgTTL        = "provider.cloudflare.ttl"
	msgConflict   = "provider.cloudflare.conflict"
	msgExists     = "provider.cloudflare.exists"
	msgNotFound   = "provider.cloudflare.not_found"
	msgTrouble    = "provider.cloudflare.trouble"
	msgRefused    = "provider.cloudflare.refused"
)

// messages are their English texts (usermsg.Say templates).
var messages = map[string]string{
	msgThrottled:  "Cloudflare is rate-limiting this account ({{.Raw}})",
	msgFormat:     "Cloudflare rejected the token's format: paste the API token itself (about 40 letters and digits, from My Profile → API Tokens), not the Global API Key and without \"Bearer\" ({{.Raw}})",
	msgToken:      "Cloudflare does not accept this API token: it is wrong, expired, revoked or limited to other IP addresses. Create a new one with the \"Edit zone DNS\" template ({{.Raw}})",
	msgPermission: "the API token may not do this: give it the permissions Zone → DNS → Edit and Zone → Zone → Read for {{.Zone}} ({{.Raw}})",
	msgTTL:        "Cloudflare refused the record's TTL ({{.Raw}})",
	msgConflict:   "a conflicting record (for example a CNAME) already exists for this name; remove it in the Cloudflare dashboard ({{.Raw}})",
	msgExists:     "an identical record already exists ({{.Raw}})",
	msgNotFound:   "the record or zone does not exist (any more) at Cloudflare ({{.Raw}})",
	msgTrouble:    "Cloudflare's API is having trouble; homederp retries later ({{.Raw}})",
	msgRefused:    "Cloudflare refused the request ({{.Raw}})",
}

// UserMessage is e's sentence for the user: its ID in the web UI's
// catalogues, and its arguments (Zone, and Raw, what the API said).
func (e *APIError) UserMessage() (id string, args map[string]any) {
	zone := e.Zone
	if zone == "" {
		zone = "your zone"
	}
	switch {
	case e.Status == http.StatusTooManyRequests || e.Has(971):
		id = msgThrottled
	case e.Has(6003) || e.Has(6111) || e.Has(6103) || e.Has(6100):
		id = msgFormat
	case e.Has(9109) || e.Has(1000) || e.Has(1001) || e.Has(9106) || e.Status == http.StatusUnauthorized:
		id = msgToken
	case e.Has(10000) || e.Has(9103) || e.Status == http.StatusForbidden:
		id = msgPermission
	case e.Has(9021):
		id = msgTTL
	case e.Has(81053) || e.Has(81054) || e.Has(81057):
		id = msgConflict
	case e.Has(81058):
		id = msgExists
	case e.Has(81044) || e.Status == http.StatusNotFound:
		id = msgNotFound
	case e.Status >= 500:
		id = msgTrouble
	default:
		id = msgRefused
	}
	return id, map[string]any{"Zone": zone, "Raw": e.Raw()}
}

func (e *APIError) Error() string {
	id, args := e.UserMessage()
	msg, _ := usermsg.Say(id, messages[id], args)
	return msg
}

// TokenError says Cloudflare knows a token but it cannot be used: it is
// disabled, expired or not valid yet. Its text is a sentence for the user.
type TokenError struct{ sentence *usermsg.Error }

func (e *TokenError) Error() string { return e.sentence.Error() }

// UserMessage is the sentence's ID and arguments for the catalogues.
func (e *TokenError) UserMessage() (id string, args map[string]any) { return e.sentence.UserMessage() }

// envelope is Cloudflare's response wrapper.
type envelope struct {
	Success    bool            `json:"success"`
	Errors     []ErrorItem     `json:"errors"`
	Messages   json.RawMessage `json:"messages"`
	Result     json.RawMessage `json:"result"`
	ResultInfo *struct {
		Page       int `json:"page"`
		PerPage    int `json:"per_page"`
		Count      int `json:"count"`
		TotalCount int `json:"total_count"`
		TotalPages int `json:"total_pages"`
	} `json:"result_info"`
}

func decodeError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var env envelope
	if json.Unmarshal(body, &env) == nil {
		e.Errors = env.Errors
	}
	return e
}
