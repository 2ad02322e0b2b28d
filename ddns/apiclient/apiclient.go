// Package apiclient is the HTTP client homederp puts between itself and a
// DNS provider's API (Cloudflare, DNSPod, AliDNS), so that the box stays a
// good API citizen whatever the provider's own client library does.
//
// A Client adds what none of the libdns providers has: timeouts, a request
// budget far below the providers' limits (limits that are shared with the
// user's dashboard and every other tool on the account), backoff on
// throttling and 5xx answers that honours Retry-After, a block on all
// calls while the provider has asked us to wait, and a refusal of answers
// that are not the API's JSON (an HTML page from a proxy) before anything
// can misread them. How a provider signals throttling and failure differs
// (HTTP 429 at Cloudflare, HTTP 200 with "RequestLimitExceeded" at
// Tencent Cloud, HTTP 400 with "Throttling.User" at Alibaba Cloud), so
// each provider package describes its API with a Vendor.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DefaultBudget is how many requests the box allows itself per 5 minutes
// at one provider: a fifth of Cloudflare's per-user limit, and far below
// DNSPod's and AliDNS's per-second limits. A steady-state check costs
// none; a change of address costs two to four.
const DefaultBudget = 240

// Options tune a Client. The zero value is ready to use.
type Options struct {
	HTTP       *http.Client  // nil = a client with a 30 s timeout
	Budget     int           // requests per 5 minutes; 0 = DefaultBudget
	MaxRetries int           // retries of one request on throttling and 5xx; 0 = 3
	MaxWait    time.Duration // longest wait inside one call; 0 = 1 min
	Logf       func(format string, args ...any)
	// Sleep waits between retries; nil = a timer. Tests record the waits
	// instead of waiting.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Vendor describes one provider's API to a Client.
type Vendor struct {
	Name string // for messages, e.g. "Cloudflare" or "DNSPod (Tencent Cloud)"
	// Classify looks at an answer whose body is valid JSON. The zero
	// Verdict passes the answer to the caller.
	Classify func(req *http.Request, status int, body []byte) Verdict
}

// Verdict is what Classify decided about one answer.
type Verdict struct {
	Retry     bool  // throttling or a temporary failure: try again after a wait
	Throttled bool  // the provider asks us to slow down: block every call for the wait
	Err       error // the provider's error, returned when the answer is not (or no longer) retried
}

// Client sends requests to one provider's API. It is safe for concurrent
// use.
type Client struct {
	o      Options
	vendor Vendor

	limiter      *rate.Limiter
	mu           sync.Mutex
	blockedUntil time.Time
	requests     atomic.Int64
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// New returns a client for v's API.
func New(v Vendor, o Options) *Client {
	if o.HTTP == nil {
		o.HTTP = defaultHTTP
	}
	if o.Budget <= 0 {
		o.Budget = DefaultBudget
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 3
	}
	if o.MaxWait <= 0 {
		o.MaxWait = time.Minute
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	return &Client{
		o:      o,
		vendor: v,
		// Refill evenly over 5 minutes, with a burst of a tenth of the
		// budget so that setup (zone lookup, list, write) is not slowed.
		limiter: rate.NewLimiter(rate.Every(5*time.Minute/time.Duration(o.Budget)), max(o.Budget/10, 1)),
	}
}

// Name is the provider's name for messages, e.g. "AliDNS".
func (c *Client) Name() string { return c.vendor.Name }

// Requests returns how many HTTP requests the client has sent, retries
// included.
func (c *Client) Requests() int64 { return c.requests.Load() }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) logf(format string, args ...any) {
	if c.o.Logf != nil {
		c.o.Logf(format, args...)
	}
}

// maxBody bounds what is read of one answer.
const maxBody = 8 << 20

// Do sends req, waiting for the budget, and retries throttling and
// temporary failures with backoff, replaying the body. After throttling
// whose wait exceeds MaxWait every call fails at once until that time, so
// the box never hammers a blocked account. The answer's body has been
// read and is replayable.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	return c.Send(req.Context(), func(attempt int) (*http.Request, error) {
		if attempt > 0 {
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				req.Body = body
			} else if req.Body != nil && req.Body != http.NoBody {
				return nil, errors.New("cannot retry a request whose body cannot be replayed")
			}
		}
		return req, nil
	})
}

// Send is Do with a new request for every attempt, for APIs whose
// signature must be fresh each time (Alibaba Cloud refuses a signature
// nonce it has seen).
func (c *Client) Send(ctx context.Context, newRequest func(attempt int) (*http.Request, error)) (*http.Response, error) {
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		until := c.blockedUntil
		c.mu.Unlock()
		if wait := time.Until(until); wait > 0 {
			return nil, &RateLimitError{Vendor: c.vendor.Name, RetryAfter: wait}
		}
		res := c.limiter.Reserve()
		if d := res.Delay(); d > c.o.MaxWait {
			res.Cancel()
			return nil, &RateLimitError{Vendor: c.vendor.Name, RetryAfter: d, Budget: c.o.Budget}
		} else if d > 0 {
			if err := c.o.Sleep(ctx, d); err != nil {
				res.Cancel()
				return nil, err
			}
		}
		req, err := newRequest(attempt)
		if err != nil {
			return nil, err
		}
		c.requests.Add(1)
		resp, err := c.o.HTTP.Do(req)
		if err != nil {
			if ctx.Err() != nil || attempt >= c.o.MaxRetries || backoff > c.o.MaxWait {
				return nil, fmt.Errorf("calling %s: %w", c.vendor.Name, err)
			}
			c.logf("%s: %s %s: %v; retrying in %v", c.vendor.Name, req.Method, req.URL.Path, err, backoff)
			if err := c.o.Sleep(ctx, backoff); err != nil {
				return nil, err
			}
			backoff *= 2
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s's answer: %w", c.vendor.Name, err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))

		var v Verdict
		switch {
		case json.Valid(body):
			v = c.vendor.Classify(req, resp.StatusCode, body)
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			// A proxy's or load balancer's error page.
			v = Verdict{Retry: true, Throttled: resp.StatusCode == http.StatusTooManyRequests,
				Err: &TroubleError{Vendor: c.vendor.Name, Status: resp.StatusCode}}
		default:
			return nil, &GarbageError{Vendor: c.vendor.Name, Status: resp.StatusCode, Body: body}
		}
		if !v.Retry {
			if v.Err != nil {
				return nil, v.Err
			}
			return resp, nil
		}
		wait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if wait <= 0 {
			wait = backoff
			backoff *= 2
		}
		if v.Throttled {
			c.mu.Lock()
			c.blockedUntil = time.Now().Add(wait)
			c.mu.Unlock()
		}
		if attempt < c.o.MaxRetries && wait <= c.o.MaxWait {
			c.logf("%s: %s %s: HTTP %d (%v); retrying in %v", c.vendor.Name, req.Method, req.URL.Path, resp.StatusCode, v.Err, wait)
			if err := c.o.Sleep(ctx, wait); err != nil {
				return nil, err
			}
			if v.Throttled {
				c.mu.Lock()
				c.blockedUntil = time.Time{}
				c.mu.Unlock()
			}
			continue
		}
		if v.Throttled {
			return nil, &RateLimitError{Vendor: c.vendor.Name, RetryAfter: wait, Cause: v.Err}
		}
		if v.Err == nil {
			return nil, &TroubleError{Vendor: c.vendor.Name, Status: resp.StatusCode}
		}
		return nil, v.Err
	}
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}
