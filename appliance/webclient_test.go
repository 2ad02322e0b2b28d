package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/webuiclient"
)

// webClient is internal/webuiclient for tests that stop at the first
// error: a browser-like client of the appliance's web UI.
type webClient struct {
	t *testing.T
	c *webuiclient.Client
}

// requestTimeout bounds each of webClient's requests.
const requestTimeout = 10 * time.Second

// newWebClient logs in to the web UI at base (e.g.
// "http://127.0.0.1:41234/") with password pw.
func newWebClient(t *testing.T, base, pw string) *webClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	c, err := webuiclient.Login(ctx, &http.Client{Timeout: requestTimeout}, base, pw)
	if err != nil {
		t.Fatal(err)
	}
	return &webClient{t: t, c: c}
}

// get fetches path; accept "" asks for HTML.
func (w *webClient) get(path, accept string) (*http.Response, string) {
	w.t.Helper()
	resp, body, err := w.c.Get(context.Background(), path, accept)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp, body
}

func (w *webClient) post(path string, form url.Values) (*http.Response, string) {
	w.t.Helper()
	resp, body, err := w.c.Post(context.Background(), path, form)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp, body
}

// token is the CSRF token of the form on page posting to action.
func (w *webClient) token(page, action string) string {
	w.t.Helper()
	tok, err := w.c.Token(context.Background(), page, action)
	if err != nil {
		w.t.Fatal(err)
	}
	return tok
}

// submit posts a setup form as a browser would and returns the flash
// message the redirect shows for step.
func (w *webClient) submit(action, step string, form url.Values) string {
	w.t.Helper()
	msg, _ := w.submitTimed(action, step, form)
	return msg
}

// submitTimed is submit, also returning how long the POST itself took
// (loading the pages around it is not counted).
func (w *webClient) submitTimed(action, step string, form url.Values) (string, time.Duration) {
	w.t.Helper()
	ctx := context.Background()
	post, err := w.c.Prepare(ctx, action, form)
	if err != nil {
		w.t.Fatal(err)
	}
	start := time.Now()
	if err := post(ctx); err != nil {
		w.t.Fatal(err)
	}
	took := time.Since(start)
	msg, err := w.c.Flash(ctx, step)
	if err != nil {
		w.t.Fatalf("POST %s: %v", action, err)
	}
	return msg, took
}
