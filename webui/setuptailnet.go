package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
)

// Step 5: the box's tailscaled (the control server it logs in to, and the
// login itself, see tailnet.go) and who may use the relay.

func readTailnet(f url.Values, _ fieldErrs) change {
	controlURL := strings.TrimSpace(f.Get("tailnet.control_url"))
	return func(c *config.Config) { c.Tailnet.ControlURL = controlURL }
}

// tailnetLogin is step 5: save the control URL, then hand the auth key
// to the box's tailscaled. The login waits up to tailnetLoginTimeout.
func (s *Server) tailnetLogin(w http.ResponseWriter, r *http.Request, u *user) {
	key := strings.TrimSpace(r.PostForm.Get("auth_key"))
	errs := fieldErrs{}
	if key != "" && strings.ContainsAny(key, " \t\r\n") {
		errs.add("auth_key", "An auth key has no spaces in it; paste it again.")
	}
	c, ok := s.apply(w, r, u, "tailnet", readTailnet(r.PostForm, errs), errs)
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
		notLoggedIn("This build runs no tailscaled to log in.")
		return
	}
	res, err := loginTailscaled(r.Context(), lc, c.Tailnet.ControlURL, key, s.o.Logf)
	if err != nil {
		s.o.Logf("webui: tailnet login failed: %s", scrub(err.Error(), key))
		msg := "The box's tailscaled did not log in: " + scrub(err.Error(), key) + "."
		if key != "" {
			msg += " The auth key was not kept; paste it again to retry."
		}
		notLoggedIn(msg)
		return
	}
	s.o.Logf("webui: tailnet login: %s", res.State)
	s.done(w, r, u, "tailnet", "%s", res.Msg)
}

func (s *Server) tailnetLogout(w http.ResponseWriter, r *http.Request, u *user) {
	c := s.o.Store.Config()
	lc := s.tailscaled(c)
	errs := fieldErrs{}
	if lc == nil {
		errs.add("auth_key", "This build runs no tailscaled.")
		s.failSetup(w, r, u, "tailnet", nil, errs)
		return
	}
	ctx, cancel := reqCtx(r, 15*time.Second)
	defer cancel()
	if err := lc.Logout(ctx); err != nil {
		errs.add("auth_key", "Logging out failed: "+plainLocalAPIError(err))
		s.failSetup(w, r, u, "tailnet", nil, errs)
		return
	}
	msg := "The box's tailscaled logged out."
	if c.Relay.VerifyClients {
		msg += " verify-clients is still on, so the relay refuses every client until the box logs in again."
	}
	s.done(w, r, u, "tailnet", "%s", msg)
}

func readVerify(f url.Values, errs fieldErrs) change {
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
			errs.add("relay.verify_client_url", "Enter the admission URL, e.g. https://headscale.example.com/verify.")
		}
	default:
		errs.add("relay.verify_clients", fmt.Sprintf("%q is not a choice here", f.Get("relay.verify")))
	}
	return func(c *config.Config) {
		c.Relay.VerifyClients, c.Relay.VerifyClientURL, c.Relay.VerifyClientURLFailOpen = clients, verifyURL, failOpen
	}
}

// saveVerify turns client verification on or off. The box's tailscaled
// must be running before verify-clients goes on, or the relay would
// refuse every client.
func (s *Server) saveVerify(w http.ResponseWriter, r *http.Request, u *user) {
	errs := fieldErrs{}
	ch := readVerify(r.PostForm, errs)
	want := s.o.Store.Config()
	ch(&want)
	if want.Relay.VerifyClients {
		ctx, cancel := reqCtx(r, 4*time.Second)
		tv := s.tailnetState(ctx, want)
		cancel()
		if !tv.Running() {
			state := tv.State
			if state == "" {
				state = tv.Error
			}
			errs.add("relay.verify_clients", "The box's tailscaled is not running ("+state+"). Log it in to your tailnet first (above); until then the relay would refuse every client.")
		}
	}
	c, ok := s.apply(w, r, u, "verify", ch, errs)
	if !ok {
		return
	}
	switch {
	case c.Relay.VerifyClients:
		s.done(w, r, u, "verify", "verify-clients is on: the relay admits only nodes the box's tailscaled can see.")
	case c.Relay.VerifyClientURL != "":
		s.done(w, r, u, "verify", "The relay now asks %s about every client.", c.Relay.VerifyClientURL)
	default:
		s.done(w, r, u, "verify", "Client verification is off: anyone who knows the address can use the relay.")
	}
}
