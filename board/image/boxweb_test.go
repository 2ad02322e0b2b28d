package image

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/internal/webuiclient"
)

// boxWeb is internal/webuiclient talking to the box's own web UI on port
// 80 over the VM's network namespace. Its methods return errors: a power
// cut may interrupt any request.
type boxWeb struct {
	*webuiclient.Client
}

// webLogin logs in to the box's web UI with the gokrazy password.
func (v *vm) webLogin(ctx context.Context) (*boxWeb, error) {
	c, err := webuiclient.Login(ctx, v.client(60*time.Second), fmt.Sprintf("http://127.0.0.1:%d", webUIPort), v.password)
	if err != nil {
		return nil, err
	}
	return &boxWeb{c}, nil
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
	resp, body, err := w.Get(ctx, "/setup", "application/json")
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
