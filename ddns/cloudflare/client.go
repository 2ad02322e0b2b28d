// Package cloudflare updates DNS records through Cloudflare's v4 API with
// github.com/libdns/cloudflare, behind an HTTP client that keeps the box a
// good API citizen.
//
// libdns/cloudflare v0.2.2 has no timeouts, retries or rate-limit handling
// and reports errors as formatted strings. Client adds timeouts, a request
// budget far below Cloudflare's 1200 requests per 5 minutes (a limit shared
// with the user's dashboard and every other tool, whose excess blocks all
// calls for 5 minutes), backoff on 429 and 5xx that honours Retry-After,
// and keeps Cloudflare's error codes so that Provider can explain them in
// plain words.
package cloudflare

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

// BaseURL is Cloudflare's API root, the one libdns/cloudflare uses. Tests
// redirect it with the http.Client they pass (see cloudflaretest).
const BaseURL = "https://api.cloudflare.com/client/v4"

// DefaultBudget is how many requests the box allows itself per 5 minutes:
// a fifth of Cloudflare's per-user limit. A steady-state check costs none.
const DefaultBudget = 240

// Client is an HTTP client for Cloudflare's API; it implements
// libdns/cloudflare's HTTPClient. The zero value is ready to use. It is
// safe for concurrent use.
type Client struct {
	HTTP       *http.Client  // nil = a client with a 30 s timeout
	Budget     int           // requests per 5 minutes; 0 = DefaultBudget
	MaxRetries int           // retries of one request on 429/5xx; 0 = 3
	MaxWait    time.Duration // longest wait inside one call; 0 = 1 min
	Logf       func(format string, args ...any)

	once         sync.Once
	limiter      *rate.Limiter
	mu           sync.Mutex
	blockedUntil time.Time
	requests     atomic.Int64
	sleep        func(ctx context.Context, d time.Duration) error // tests shorten waits
}

// Requests returns how many HTTP requests the client has sent, retries
// included.
func (c *Client) Requests() int64 { return c.requests.Load() }

func (c *Client) init() {
	c.once.Do(func() {
		b := c.Budget
		if b <= 0 {
			b = DefaultBudget
		}
		// Refill evenly over 5 minutes, with a burst of a tenth of the
		// budget so that setup (zone lookup, list, write) is not slowed.
		c.limiter = rate.NewLimiter(rate.Every(5*time.Minute/time.Duration(b)), max(b/10, 1))
		if c.sleep == nil {
			c.sleep = sleepCtx
		}
	})
}

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

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

func (c *Client) maxWait() time.Duration {
	if c.MaxWait > 0 {
		return c.MaxWait
	}
	return time.Minute
}

func (c *Client) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// maxBody bounds what is read of one response.
const maxBody = 8 << 20

// Do sends req, waiting for the budget, and retries 429 and 5xx answers
// with backoff. After a 429 whose Retry-After exceeds MaxWait every call
// fails at once until that time, so the box never hammers a blocked
// account. A body that is not JSON (an HTML error page from a proxy) is an
// error here, before libdns can misread it.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	c.init()
	ctx := req.Context()
	retries := c.MaxRetries
	if retries <= 0 {
		retries = 3
	}
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		until := c.blockedUntil
		c.mu.Unlock()
		if wait := time.Until(until); wait > 0 {
			return nil, &APIError{Status: http.StatusTooManyRequests, RetryAfter: wait, Errors: []ErrorItem{{Code: 971, Message: "rate limited; not calling Cloudflare again until " + until.Format(time.RFC3339)}}}
		}
		res := c.limiter.Reserve()
		if d := res.Delay(); d > c.maxWait() {
			res.Cancel()
			return nil, &APIError{Status: http.StatusTooManyRequests, RetryAfter: d, Errors: []ErrorItem{{Code: 971, Message: fmt.Sprintf("homederp's own budget of %d Cloudflare requests per 5 minutes is used up", c.budget())}}}
		} else if d > 0 {
			if err := c.sleep(ctx, d); err != nil {
				res.Cancel()
				return nil, err
			}
		}
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
		c.requests.Add(1)
		resp, err := c.httpClient().Do(req)
		if err != nil {
			if ctx.Err() != nil || attempt >= retries || backoff > c.maxWait() {
				return nil, fmt.Errorf("calling Cloudflare: %w", err)
			}
			c.logf("cloudflare: %s %s: %v; retrying in %v", req.Method, req.URL.Path, err, backoff)
			if err := c.sleep(ctx, backoff); err != nil {
				return nil, err
			}
			backoff *= 2
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading Cloudflare's answer: %w", err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))

		retryable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if retryable {
			wait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
			if wait <= 0 {
				wait = backoff
				backoff *= 2
			}
			if resp.StatusCode == http.StatusTooManyRequests {
				c.mu.Lock()
				c.blockedUntil = time.Now().Add(wait)
				c.mu.Unlock()
			}
			if attempt < retries && wait <= c.maxWait() {
				c.logf("cloudflare: %s %s: HTTP %d; retrying in %v", req.Method, req.URL.Path, resp.StatusCode, wait)
				if err := c.sleep(ctx, wait); err != nil {
					return nil, err
				}
				if resp.StatusCode == http.StatusTooManyRequests {
					c.mu.Lock()
					c.blockedUntil = time.Time{}
					c.mu.Unlock()
				}
				continue
			}
			e := decodeError(resp.StatusCode, body)
			e.RetryAfter = wait
			return nil, e
		}
		if !json.Valid(body) {
			return nil, fmt.Errorf("Cloudflare answered HTTP %d with something that is not its API's JSON (%.60q); nothing was changed", resp.StatusCode, body)
		}
		if resp.StatusCode >= 400 {
			recordError(ctx, decodeError(resp.StatusCode, body))
		}
		return resp, nil
	}
}

func (c *Client) budget() int {
	if c.Budget > 0 {
		return c.Budget
	}
	return DefaultBudget
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

type errSinkKey struct{}

// errSink receives the last Cloudflare error seen by calls made with a
// context from withErrSink, so that Provider can replace libdns's string
// errors with an *APIError.
type errSink struct {
	mu  sync.Mutex
	err *APIError
}

func withErrSink(ctx context.Context) (context.Context, *errSink) {
	s := new(errSink)
	return context.WithValue(ctx, errSinkKey{}, s), s
}

func recordError(ctx context.Context, e *APIError) {
	if s, ok := ctx.Value(errSinkKey{}).(*errSink); ok {
		s.mu.Lock()
		s.err = e
		s.mu.Unlock()
	}
}

func (s *errSink) last() *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
