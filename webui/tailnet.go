package webui

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"tailscale.com/client/local"
	"tailscale.com/ipn"
)

// The box's tailscaled is what verify-clients asks about every client, so
// it must be logged in to the user's tailnet. The web UI does what
// `tailscale up --login-server=... --authkey=...` does, over the same
// LocalAPI (tailscale.com/client/local): watch the IPN bus, Start with
// the auth key and the prefs, start an interactive login when there is no
// node key yet, and wait for Running (or for a login URL to show). The
// auth key goes to tailscaled and nowhere else: it is not stored, logged
// or sent back to the browser.

// tailnetLoginTimeout bounds one login attempt.
const tailnetLoginTimeout = 45 * time.Second

// tailnetView is the box's tailscaled as the setup and status pages show it.
type tailnetView struct {
	Available   bool     `json:"available"`             // the box has a tailscaled
	Reachable   bool     `json:"reachable"`             // its LocalAPI answered
	Error       string   `json:"error,omitempty"`       // why it did not
	State       string   `json:"state,omitempty"`       // e.g. "Running", "NeedsLogin"
	AuthURL     string   `json:"auth_url,omitempty"`    // where to log in interactively
	ControlURL  string   `json:"control_url,omitempty"` // the control server it uses
	Self        string   `json:"self,omitempty"`        // e.g. "homederp.tail1234.ts.net."
	Tailnet     string   `json:"tailnet,omitempty"`     // e.g. "example.com"
	IPs         []string `json:"ips,omitempty"`         // e.g. ["100.64.0.7"]
	Peers       int      `json:"peers"`                 // peers it can see
	PeersOnline int      `json:"peers_online"`
	Health      []string `json:"health,omitempty"`
}

// Running reports whether tailscaled is logged in and up.
func (t tailnetView) Running() bool { return t.State == ipn.Running.String() }

func (s *Server) tailscaled(c config.Config) *local.Client {
	if s.o.Tailscaled == nil {
		return nil
	}
	return s.o.Tailscaled(c)
}

// tailnetAskTimeout bounds the status and setup pages' questions to the
// box's tailscaled: a healthy one answers in milliseconds, and a hung one
// must not hold the page (the relay's status says it is not answering).
const tailnetAskTimeout = time.Second

// tailnetState asks the box's tailscaled how it is, briefly.
func (s *Server) tailnetState(ctx context.Context, t *tr, c config.Config) tailnetView {
	lc := s.tailscaled(c)
	if lc == nil {
		return tailnetView{Error: t.S("tailscaled.none")}
	}
	v := tailnetView{Available: true}
	ctx, cancel := context.WithTimeout(ctx, tailnetAskTimeout)
	defer cancel()
	st, err := lc.Status(ctx)
	if err != nil {
		v.Error = t.S("tailscaled.unreachable", "Err", plainLocalAPIError(t, err))
		return v
	}
	v.Reachable = true
	v.State = st.BackendState
	v.AuthURL = st.AuthURL
	if st.Self != nil {
		v.Self = st.Self.DNSName
	}
	if st.CurrentTailnet != nil {
		v.Tailnet = st.CurrentTailnet.Name
	}
	for _, ip := range st.TailscaleIPs {
		v.IPs = append(v.IPs, ip.String())
	}
	v.Peers = len(st.Peer)
	for _, p := range st.Peer {
		if p.Online {
			v.PeersOnline++
		}
	}
	v.Health = slices.Clone(st.Health)
	if p, err := lc.GetPrefs(ctx); err == nil {
		v.ControlURL = p.ControlURL
	}
	return v
}

// loginResult says how a login attempt ended when it did not fail.
type loginResult struct {
	State   string // e.g. "Running"
	AuthURL string // set when a person must finish the login in a browser
	Msg     string // for the user, e.g. "The box is logged in to example.com."
}

// loginTailscaled logs the box's tailscaled in to controlURL ("" means
// Tailscale's) with authKey ("" means interactively, through a URL).
func loginTailscaled(ctx context.Context, t *tr, lc *local.Client, controlURL, authKey string, logf func(string, ...any)) (loginResult, error) {
	ctx, cancel := context.WithTimeout(ctx, tailnetLoginTimeout)
	defer cancel()
	want := controlURL
	if want == "" {
		want = ipn.DefaultControlURL
	}
	st, err := lc.StatusWithoutPeers(ctx)
	if err != nil {
		return loginResult{}, errors.New(t.S("tailscaled.unreachable", "Err", plainLocalAPIError(t, err)))
	}
	prefs, err := lc.GetPrefs(ctx)
	if err != nil {
		return loginResult{}, errors.New(t.S("tailscaled.prefs", "Err", plainLocalAPIError(t, err)))
	}
	cur := prefs.ControlURL
	if cur == "" {
		cur = ipn.DefaultControlURL
	}
	running := st.BackendState == ipn.Running.String()
	if running && cur == want && authKey == "" {
		return loginResult{State: st.BackendState, Msg: t.S("tailscaled.already", "URL", want)}, nil
	}
	if running && cur != want {
		// tailscale up refuses to switch control servers without
		// --force-reauth; switching is what the user asked for here.
		logf("webui: tailscaled switches control server from %s to %s", cur, want)
		if err := lc.Logout(ctx); err != nil {
			return loginResult{}, errors.New(t.S("tailscaled.switch_logout", "URL", cur, "Err", plainLocalAPIError(t, err)))
		}
	}

	// Watch before Start, or the notification we wait for may pass.
	watcher, err := lc.WatchIPNBus(ctx, ipn.NotifyInitialState)
	if err != nil {
		return loginResult{}, errors.New(t.S("tailscaled.watch", "Err", plainLocalAPIError(t, err)))
	}
	defer watcher.Close()

	p := prefs.Clone()
	p.ControlURL = want
	p.WantRunning = true
	// The box resolves public names for ddns and ACME; MagicDNS must not
	// take its resolver over.
	p.CorpDNS = false
	if err := lc.Start(ctx, ipn.Options{AuthKey: authKey, UpdatePrefs: p}); err != nil {
		return loginResult{}, errors.New(t.S("tailscaled.start", "Err", scrub(plainLocalAPIError(t, err), authKey)))
	}
	if authKey == "" || !st.HaveNodeKey {
		if err := lc.StartLoginInteractive(ctx); err != nil {
			return loginResult{}, errors.New(t.S("tailscaled.start", "Err", scrub(plainLocalAPIError(t, err), authKey)))
		}
	}
	// Notifications arrive on a goroutine so that an error can be given
	// a grace period: a register request of an earlier attempt (say,
	// with a mistyped key) may still fail after this attempt started.
	type note struct {
		n   ipn.Notify
		err error
	}
	notes := make(chan note, 1)
	go func() {
		for {
			n, err := watcher.Next()
			select {
			case notes <- note{n, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	state := st.BackendState
	var errMsg string
	var grace <-chan time.Time
	fail := func(err error) (loginResult, error) {
		if authKey != "" {
			stopRetrying(ctx, lc)
		}
		return loginResult{}, err
	}
	for {
		var nt note
		select {
		case <-grace:
			return fail(errors.New(t.S("tailscaled.said", "Msg", errMsg)))
		case nt = <-notes:
		}
		if nt.err != nil {
			switch {
			case errMsg != "":
				return fail(errors.New(t.S("tailscaled.said", "Msg", errMsg)))
			case ctx.Err() != nil && authKey != "" && state == ipn.NeedsLogin.String():
				return fail(errors.New(t.S("tailscaled.key_timeout", "Wait", tailnetLoginTimeout.String())))
			case ctx.Err() != nil:
				return fail(errors.New(t.S("tailscaled.timeout", "Wait", tailnetLoginTimeout.String(), "State", t.backendState(state))))
			}
			return fail(errors.New(t.S("tailscaled.watch", "Err", plainLocalAPIError(t, nt.err))))
		}
		n := nt.n
		if n.ErrMessage != nil && errMsg == "" {
			errMsg = scrub(*n.ErrMessage, authKey)
			grace = time.After(loginErrorGrace)
		}
		if n.State != nil {
			state = n.State.String()
			switch *n.State {
			case ipn.Running:
				return loginResult{State: state, Msg: t.S("tailscaled.running")}, nil
			case ipn.NeedsMachineAuth:
				return loginResult{State: state, Msg: t.S("tailscaled.needs_approval")}, nil
			}
		}
		if n.BrowseToURL != nil && *n.BrowseToURL != "" {
			if authKey != "" {
				return fail(errors.New(t.S("tailscaled.key_refused")))
			}
			return loginResult{State: state, AuthURL: *n.BrowseToURL, Msg: t.S("tailscaled.open_link")}, nil
		}
	}
}

// loginErrorGrace is how long an error from tailscaled may still be
// followed by success before the login counts as failed.
const loginErrorGrace = 3 * time.Second

// stopRetrying keeps tailscaled from retrying a refused auth key in the
// background (and from reporting that failure into the next attempt).
func stopRetrying(ctx context.Context, lc *local.Client) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	lc.EditPrefs(ctx, &ipn.MaskedPrefs{Prefs: ipn.Prefs{WantRunning: false}, WantRunningSet: true})
}

var dialUnixRx = regexp.MustCompile(`dial unix (\S+): connect: (no such file or directory|connection refused)`)

// plainLocalAPIError turns the common LocalAPI failures into words.
func plainLocalAPIError(t *tr, err error) string {
	msg := err.Error()
	if m := dialUnixRx.FindStringSubmatch(msg); m != nil {
		return t.S("tailscaled.not_running", "Socket", m[1])
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return t.S("tailscaled.no_answer")
	}
	return msg
}

// scrub removes secret from a message, in case a server echoes it.
func scrub(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "[the secret]")
}
