package webui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
)

// Step 5: the box's tailscaled (the control server it logs in to, and the
// login itself, see tailnet.go) and who may use the relay.

func readTailnet(_ *tr, f url.Values, _ fieldErrs) change {
	controlURL := strings.TrimSpace(f.Get("tailnet.control_url"))
	return func(c *config.Config) { c.Tailnet.ControlURL = controlURL }
}

// tailnetLogin is step 5: save the control URL, then hand the auth key
// to the box's tailscaled. The login waits up to tailnetLoginTimeout.
func (s *Server) tailnetLogin(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	key := strings.TrimSpace(r.PostForm.Get("auth_key"))
	errs := fieldErrs{}
	if key != "" && strings.ContainsAny(key, " \t\r\n") {
		errs.add("auth_key", t.S("setup.err.key_spaces"))
	}
	c, ok := s.apply(w, r, u, "tailnet", readTailnet(t, r.PostForm, errs), errs)
	if !ok {
		return
	}
	// From here on the control URL is saved; the page must say so.
	notLoggedIn := func(msg string) {
		errs.add("auth_key", msg)
		s.renderSetup(w, r, u, http.StatusBadRequest, shown{step: "tailnet", errs: errs, partly: true})
	}
	lc := s.tailscaled(c)
	if lc == nil {
		notLoggedIn(t.S("setup.err.no_tailscaled_login"))
		return
	}
	res, err := loginTailscaled(r.Context(), t, lc, c.Tailnet.ControlURL, key, s.o.Logf)
	if err != nil {
		s.o.Logf("webui: tailnet login failed: %s", scrub(err.Error(), key))
		id := "setup.err.login_failed"
		if key != "" {
			id = "setup.err.login_failed_key"
		}
		notLoggedIn(t.S(id, "Err", scrub(err.Error(), key)))
		return
	}
	s.o.Logf("webui: tailnet login: %s", res.State)
	s.syncDisks()
	s.done(w, r, u, "tailnet", res.Msg)
}

// syncDisks makes tailscaled's new state durable: see Options.SyncDisks.
func (s *Server) syncDisks() {
	if s.o.SyncDisks != nil {
		s.o.SyncDisks()
	}
}

func (s *Server) tailnetLogout(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	c := s.o.Store.Config()
	lc := s.tailscaled(c)
	errs := fieldErrs{}
	if lc == nil {
		errs.add("auth_key", t.S("setup.err.no_tailscaled"))
		s.failSetup(w, r, u, "tailnet", nil, errs)
		return
	}
	ctx, cancel := reqCtx(r, 15*time.Second)
	defer cancel()
	if err := lc.Logout(ctx); err != nil {
		errs.add("auth_key", t.S("setup.err.logout_failed", "Err", plainLocalAPIError(t, err)))
		s.failSetup(w, r, u, "tailnet", nil, errs)
		return
	}
	s.syncDisks()
	id := "flash.logged_out"
	if c.Relay.VerifyClients {
		id = "flash.logged_out_verify"
	}
	s.done(w, r, u, "tailnet", t.S(id))
}

func readVerify(t *tr, f url.Values, errs fieldErrs) change {
	var (
		clients, failOpen bool
		verifyURL         string
	)
	switch f.Get("relay.verify") {
	case "off":
	case "tailscaled":
		clients = true
	case "url":
		verifyURL = strings.TrimSpace(f.Get("relay.verify_client_url"))
		failOpen = checked(f, "relay.verify_client_url_fail_open")
		if verifyURL == "" {
			errs.add("relay.verify_client_url", t.S("setup.err.need_verify_url"))
		}
	default:
		errs.add("relay.verify_clients", t.S("setup.err.not_a_choice", "Value", strconv.Quote(f.Get("relay.verify"))))
	}
	return func(c *config.Config) {
		c.Relay.VerifyClients, c.Relay.VerifyClientURL, c.Relay.VerifyClientURLFailOpen = clients, verifyURL, failOpen
	}
}

// saveVerify turns client verification on or off. The box's tailscaled
// must be running before verify-clients goes on, or the relay would
// refuse every client.
func (s *Server) saveVerify(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	errs := fieldErrs{}
	ch := readVerify(t, r.PostForm, errs)
	want := s.o.Store.Config()
	ch(&want)
	if want.Relay.VerifyClients {
		ctx, cancel := reqCtx(r, 4*time.Second)
		tv := s.tailnetState(ctx, t, want)
		cancel()
		if !tv.Running() {
			state := t.backendState(tv.State)
			if tv.State == "" {
				state = tv.Error
			}
			errs.add("relay.verify_clients", t.S("setup.err.verify_not_running", "State", state))
		}
	}
	c, ok := s.apply(w, r, u, "verify", ch, errs)
	if !ok {
		return
	}
	switch {
	case c.Relay.VerifyClients:
		s.done(w, r, u, "verify", t.S("flash.verify_on"))
	case c.Relay.VerifyClientURL != "":
		s.done(w, r, u, "verify", t.S("flash.verify_url", "URL", c.Relay.VerifyClientURL))
	default:
		s.done(w, r, u, "verify", t.S("flash.verify_off"))
	}
}
