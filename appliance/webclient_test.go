package main

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// webClient is a browser-like client of the appliance's web UI: cookies,
// a logged-in session and the CSRF tokens the pages carry.
type webClient struct {
	t    *testing.T
	base string // e.g. "http://127.0.0.1:41234/"
	pw   string
	c    *http.Client
}

// newWebClient logs in to the web UI at base (e.g.
// "http://127.0.0.1:41234/") with password pw.
func newWebClient(t *testing.T, base, pw string) *webClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	w := &webClient{t: t, base: base, pw: pw, c: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	tok := w.token("/login", "/login")
	resp, body := w.post("/login", url.Values{"csrf": {tok}, "password": {w.pw}, "next": {"/setup"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %s\n%s", resp.Status, body)
	}
	return w
}

func (w *webClient) do(req *http.Request) (*http.Response, string) {
	w.t.Helper()
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// get fetches path; accept "" asks for HTML.
func (w *webClient) get(path, accept string) (*http.Response, string) {
	w.t.Helper()
	req, _ := http.NewRequest("GET", w.base+strings.TrimPrefix(path, "/"), nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return w.do(req)
}

func (w *webClient) post(path string, form url.Values) (*http.Response, string) {
	w.t.Helper()
	req, _ := http.NewRequest("POST", w.base+strings.TrimPrefix(path, "/"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return w.do(req)
}

var formCSRFRx = regexp.MustCompile(`<form method="post" action="([^"#]*)(?:#[^"]*)?"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)">`)

// token is the CSRF token of the form on page posting to action.
func (w *webClient) token(page, action string) string {
	w.t.Helper()
	resp, body := w.get(page, "")
	if resp.StatusCode != http.StatusOK {
		w.t.Fatalf("GET %s: %s", page, resp.Status)
	}
	for _, m := range formCSRFRx.FindAllStringSubmatch(body, -1) {
		if m[1] == action {
			return m[2]
		}
	}
	w.t.Fatalf("GET %s: no form posting to %q", page, action)
	return ""
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
	form.Set("csrf", w.token("/setup", action))
	start := time.Now()
	resp, body := w.post(action, form)
	took := time.Since(start)
	if resp.StatusCode != http.StatusSeeOther {
		w.t.Fatalf("POST %s: %s, want a redirect\n%s", action, resp.Status, body)
	}
	_, page := w.get("/setup", "")
	rx := regexp.MustCompile(`(?s)id="` + step + `">.*?<p class="flash" role="status">(.*?)</p>`)
	m := rx.FindStringSubmatch(page)
	if m == nil {
		w.t.Fatalf("POST %s: no flash message for step %s", action, step)
	}
	return html.UnescapeString(m[1]), took
}
