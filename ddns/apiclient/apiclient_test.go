package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in, now); got != tt.want {
			t.Errorf("retryAfter(%q): got %v, want %v", tt.in, got, tt.want)
		}
	}
}

// vendorErr is a provider error with a Raw form.
type vendorErr string

func (e vendorErr) Error() string { return "the provider refused: " + string(e) }
func (e vendorErr) Raw() string   { return string(e) }

// TestThrottlingInTheBody: a provider that throttles with HTTP 200 and a
// code in the body (as Tencent Cloud does) is retried with backoff, and
// blocked once the wait exceeds MaxWait.
func TestThrottlingInTheBody(t *testing.T) {
	var throttle atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if throttle.Add(-1) >= 0 {
			fmt.Fprint(w, `{"Error": "RequestLimitExceeded"}`)
			return
		}
		fmt.Fprint(w, `{"ok": true}`)
	}))
	defer srv.Close()
	v := Vendor{Name: "Example", Classify: func(_ *http.Request, _ int, body []byte) Verdict {
		if strings.Contains(string(body), "RequestLimitExceeded") {
			return Verdict{Retry: true, Throttled: true, Err: vendorErr("RequestLimitExceeded")}
		}
		return Verdict{}
	}}
	var waits []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	get := func(c *Client) error {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	c := New(v, Options{MaxWait: 3 * time.Second, Sleep: sleep})
	throttle.Store(2)
	if err := get(c); err != nil {
		t.Fatalf("two throttled answers, then success: got %v", err)
	}
	if fmt.Sprint(waits) != "[1s 2s]" || c.Requests() != 3 {
		t.Errorf("waits %v, requests %d; want [1s 2s] and 3", waits, c.Requests())
	}

	c = New(v, Options{MaxWait: 1500 * time.Millisecond, Sleep: sleep})
	throttle.Store(5)
	err := get(c)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second || !strings.HasSuffix(err.Error(), "(RequestLimitExceeded)") {
		t.Fatalf("got %v, want a RateLimitError after 2s of backoff showing the raw code", err)
	}
	if err := get(c); !errors.As(err, &rl) || c.Requests() != 2 {
		t.Errorf("while blocked: got %v after %d requests, want a RateLimitError and no new request", err, c.Requests())
	}
}

// TestNotJSON: an HTML page is refused before anyone can misread it; a
// 5xx page is retried first.
func TestNotJSON(t *testing.T) {
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(int(status.Load()))
		fmt.Fprint(w, "<html>captive portal</html>")
	}))
	defer srv.Close()
	c := New(Vendor{Name: "Example", Classify: func(*http.Request, int, []byte) Verdict { return Verdict{} }},
		Options{Sleep: func(context.Context, time.Duration) error { return nil }})
	for _, tt := range []struct {
		status   int
		want     string
		requests int64
	}{
		{200, "not its API's JSON", 1},
		{502, "having trouble (HTTP 502 Bad Gateway)", 1 + 4},
	} {
		status.Store(int32(tt.status))
		req, _ := http.NewRequest("GET", srv.URL, nil)
		_, err := c.Do(req)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("HTTP %d: got %v, want %q", tt.status, err, tt.want)
		}
		if c.Requests() != tt.requests {
			t.Errorf("HTTP %d: %d requests so far, want %d", tt.status, c.Requests(), tt.requests)
		}
	}
}

// codedErr is a provider error named by a code.
type codedErr string

func (e codedErr) Error() string   { return string(e) }
func (e codedErr) Throttled() bool { return e == "Throttling" }
func (e codedErr) Temporary() bool { return e.Throttled() || e == "InternalError" }

func TestCodedVerdict(t *testing.T) {
	for _, tt := range []struct {
		status           int
		err              CodedError
		retry, throttled bool
		want             string // the Verdict's error; "" = none
	}{
		{200, nil, false, false, ""},
		{502, nil, true, false, "Example's API is having trouble (HTTP 502 Bad Gateway); homederp retries later"},
		{200, codedErr("Throttling"), true, true, "Throttling"},
		{400, codedErr("InternalError"), true, false, "InternalError"},
		{503, codedErr("Refused"), true, false, "Refused"},
		{403, codedErr("Refused"), false, false, "Refused"},
	} {
		v := CodedVerdict("Example", tt.status, tt.err)
		got := ""
		if v.Err != nil {
			got = v.Err.Error()
		}
		if v.Retry != tt.retry || v.Throttled != tt.throttled || got != tt.want {
			t.Errorf("CodedVerdict(%d, %v): got %+v, want retry %v, throttled %v, error %q", tt.status, tt.err, v, tt.retry, tt.throttled, tt.want)
		}
	}
}
