package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
)

// boxWeb is a browser-like client of the box's own web UI on port 80:
// cookies, a logged-in session, and the CSRF tokens the pages carry. It
// is the approach of appliance/webclient_test.go, over the VM's network
// namespace, and returns errors instead of stopping the test: a power cut
// may interrupt any request.
type boxWeb struct {
	v *vm
	c *http.Client
}

// webLogin logs in to the box's web UI with the gokrazy password.
func (v *vm) webLogin(ctx context.Context) (*boxWeb, error) {
	jar, _ := cookiejar.New(nil)
	c := v.client(60 * time.Second)
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	w := &boxWeb{v: v, c: c}
	tok, err := w.token(ctx, "/login", "/login")
	if err != nil {
		return nil, err
	}
	resp, body, err := w.post(ctx, "/login", url.Values{"csrf": {tok}, "password": {v.password}, "next": {"/setup"}})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("web UI login: got %s, want a redirect\n%s", resp.Status, body)
	}
	return w, nil
}

func (w *boxWeb) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", webUIPort, path)
}

func (w *boxWeb) do(req *http.Request) (*http.Response, string, error) {
	resp, err := w.c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp, string(b), err
}

func (w *boxWeb) get(ctx context.Context, path, accept string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url(path), nil)
	if err != nil {
		return nil, "", err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return w.do(req)
}

func (w *boxWeb) post(ctx context.Context, path string, form url.Values) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url(path), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return w.do(req)
}

var boxFormRx = regexp.MustCompile(`<form method="post" action="([^"#]*)(?:#[^"]*)?"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)">`)

// token is the CSRF token of the form on page posting to action.
func (w *boxWeb) token(ctx context.Context, page, action string) (string, error) {
	resp, body, err := w.get(ctx, page, "")
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", page, resp.Status)
	}
	for _, m := range boxFormRx.FindAllStringSubmatch(body, -1) {
		if m[1] == action {
			return m[2], nil
		}
	}
	return "", fmt.Errorf("GET %s: no form posting to %q", page, action)
}

// prepare fetches the setup form's token and returns the POST that saves
// form, so that a caller can time the POST alone (and cut the power
// during it).
func (w *boxWeb) prepare(ctx context.Context, action string, form url.Values) (func(context.Context) error, error) {
	tok, err := w.token(ctx, "/setup", action)
	if err != nil {
		return nil, err
	}
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", tok)
	return func(ctx context.Context) error {
		resp, body, err := w.post(ctx, action, form)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusSeeOther {
			return fmt.Errorf("POST %s: got %s, want a redirect\n%s", action, resp.Status, body)
		}
		return nil
	}, nil
}

// submit saves a setup form, as a person does.
func (w *boxWeb) submit(ctx context.Context, action string, form url.Values) error {
	post, err := w.prepare(ctx, action, form)
	if err != nil {
		return err
	}
	return post(ctx)
}

// boxSetup is the setup page's JSON: the saved configuration (what the
// box loaded from /perm at boot, or saved since) and tailscaled's state.
type boxSetup struct {
	Config    config.Config `json:"config"`
	LoadError string        `json:"load_error"`
	Tailnet   struct {
		Reachable  bool     `json:"reachable"`
		State      string   `json:"state"` // e.g. "Running", "NeedsLogin"
		ControlURL string   `json:"control_url"`
		IPs        []string `json:"ips"`
		Error      string   `json:"error"`
	} `json:"tailnet"`
}

func (w *boxWeb) setup(ctx context.Context) (*boxSetup, error) {
	resp, body, err := w.get(ctx, "/setup", "application/json")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /setup as JSON: %s", resp.Status)
	}
	var s boxSetup
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		return nil, fmt.Errorf("GET /setup as JSON: %w", err)
	}
	return &s, nil
}
