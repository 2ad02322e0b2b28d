package apiclient

import (
	"fmt"
	"net/http"
	"time"
)

// The errors below are the failures every provider shares. Their texts are
// sentences for the user, each built from one format string so that a
// message catalogue can translate it.

// RateLimitError is a call that was not made, or given up, because of a
// rate limit: the provider's (it throttled the account) or homederp's own
// budget.
type RateLimitError struct {
	Vendor     string        // e.g. "AliDNS"
	RetryAfter time.Duration // how long until a call may succeed
	Budget     int           // homederp's own budget, if that is what ran out; 0 otherwise
	// Cause is the provider's answer, if any. If it has a Raw method
	// (the provider's codes and message), that is shown rather than its
	// sentence.
	Cause error
}

// UserMessage is e's sentence for the user: its ID in the web UI's
// catalogues (webui/locales), and its arguments.
func (e *RateLimitError) UserMessage() (id string, args map[string]any) {
	args = map[string]any{"Vendor": e.Vendor, "Wait": e.RetryAfter.Round(time.Second).String(), "Budget": e.Budget, "Raw": ""}
	if e.Budget > 0 {
		return "provider.budget", args
	}
	if r, ok := e.Cause.(interface{ Raw() string }); ok {
		args["Raw"] = " (" + r.Raw() + ")"
	} else if e.Cause != nil {
		args["Raw"] = " (" + e.Cause.Error() + ")"
	}
	return "provider.rate_limited", args
}

func (e *RateLimitError) Error() string {
	if e.Budget > 0 {
		return fmt.Sprintf("homederp's own budget of %d %s requests per 5 minutes is used up; it calls again in %v", e.Budget, e.Vendor, e.RetryAfter.Round(time.Second))
	}
	msg := fmt.Sprintf("%s is rate-limiting this account; homederp waits %v before calling again", e.Vendor, e.RetryAfter.Round(time.Second))
	if r, ok := e.Cause.(interface{ Raw() string }); ok {
		msg += " (" + r.Raw() + ")"
	} else if e.Cause != nil {
		msg += " (" + e.Cause.Error() + ")"
	}
	return msg
}

func (e *RateLimitError) Unwrap() error { return e.Cause }

// TroubleError is a 5xx answer (or a throttling one) that was not the
// provider's JSON and did not go away with retries.
type TroubleError struct {
	Vendor string
	Status int // e.g. 502
}

// UserMessage is e's sentence for the user: its ID in the web UI's
// catalogues (webui/locales), and its arguments.
func (e *TroubleError) UserMessage() (id string, args map[string]any) {
	return "provider.trouble", map[string]any{"Vendor": e.Vendor, "Status": fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))}
}

func (e *TroubleError) Error() string {
	return fmt.Sprintf("%s's API is having trouble (HTTP %d %s); homederp retries later", e.Vendor, e.Status, http.StatusText(e.Status))
}

// GarbageError is an answer that is not the API's JSON, e.g. a captive
// portal's or a proxy's HTML page.
type GarbageError struct {
	Vendor string
	Status int
	Body   []byte
}

// UserMessage is e's sentence for the user: its ID in the web UI's
// catalogues (webui/locales), and its arguments.
func (e *GarbageError) UserMessage() (id string, args map[string]any) {
	return "provider.garbage", map[string]any{"Vendor": e.Vendor, "Status": e.Status, "Body": fmt.Sprintf("%.60q", e.Body)}
}

func (e *GarbageError) Error() string {
	return fmt.Sprintf("%s answered HTTP %d with something that is not its API's JSON (%.60q); nothing was changed", e.Vendor, e.Status, e.Body)
}
