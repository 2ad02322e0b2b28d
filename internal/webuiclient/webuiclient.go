// Package webuiclient is a browser-like client of the box's web UI for
// tests: a cookie jar, a session logged in with the gokrazy password,
// and the CSRF token each form carries. It returns errors rather than
// stopping a test, because a power cut may interrupt any request; tests
// that want to stop wrap it.
package webuiclient

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// Client talks to one web UI as one logged-in browser.
type Client struct {
	base string // e.g. "http://127.0.0.1:41234"
	hc   *http.Client
}

// Login logs in to the web UI at base (e.g. "http://127.0.0.1:41234")
// with password, through hc (nil: a client with no timeout), to which it
// adds a cookie jar and which it tells not to follow redirects, so that
// a test sees them.
func Login(ctx context.Context, hc *http.Client, base, password string) (*Client, error) {
	if hc == nil {
		hc = &http.Client{}
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{base: strings.TrimSuffix(base, "/"), hc: hc}
	tok, err := c.Token(ctx, "/login", "/login")
	if err != nil {
		return nil, err
	}
	resp, body, err := c.Post(ctx, "/login", url.Values{"csrf": {tok}, "password": {password}, "next": {"/setup"}})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("web UI login: got %s, want a redirect\n%s", resp.Status, body)
	}
	return c, nil
}

func (c *Client) do(req *http.Request) (*http.Response, string, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp, string(b), err
}

// Get fetches path (e.g. "/status") and returns the response with its
// body read; accept "" asks for HTML.
func (c *Client) Get(ctx context.Context, path, accept string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, "", err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return c.do(req)
}

// Post posts form to path as a browser's form submission.
func (c *Client) Post(ctx context.Context, path string, form url.Values) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// formRx is a form of the web UI with its CSRF token: every form starts
// with the hidden csrf input.
var formRx = regexp.MustCompile(`<form method="post" action="([^"#]*)(?:#[^"]*)?"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)">`)

// Token is the CSRF token of the form on page that posts to action.
func (c *Client) Token(ctx context.Context, page, action string) (string, error) {
	resp, body, err := c.Get(ctx, page, "")
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", page, resp.Status)
	}
	for _, m := range formRx.FindAllStringSubmatch(body, -1) {
		if m[1] == action {
			return m[2], nil
		}
	}
	return "", fmt.Errorf("GET %s: no form posting to %q", page, action)
}

// Prepare fetches the token of the setup page's form posting to action
// and returns the POST that saves form, so that a caller can time the
// POST alone (or cut the power during it). The POST fails unless the web
// UI answers with the redirect that confirms a save.
func (c *Client) Prepare(ctx context.Context, action string, form url.Values) (func(context.Context) error, error) {
	tok, err := c.Token(ctx, "/setup", action)
	if err != nil {
		return nil, err
	}
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", tok)
	return func(ctx context.Context) error {
		resp, body, err := c.Post(ctx, action, form)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusSeeOther {
			return fmt.Errorf("POST %s: got %s, want a redirect\n%s", action, resp.Status, body)
		}
		return nil
	}, nil
}

// Submit saves a setup form, as a person does.
func (c *Client) Submit(ctx context.Context, action string, form url.Values) error {
	post, err := c.Prepare(ctx, action, form)
	if err != nil {
		return err
	}
	return post(ctx)
}

// Flash is the message the setup page shows in the section with id step
// (e.g. "ports") after a save.
func (c *Client) Flash(ctx context.Context, step string) (string, error) {
	_, page, err := c.Get(ctx, "/setup", "")
	if err != nil {
		return "", err
	}
	rx := regexp.MustCompile(`(?s)id="` + regexp.QuoteMeta(step) + `">.*?<p class="flash" role="status">(.*?)</p>`)
	m := rx.FindStringSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("GET /setup: no flash message for step %s", step)
	}
	return html.UnescapeString(m[1]), nil
}
