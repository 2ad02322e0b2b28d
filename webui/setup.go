package webui

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
)

// Setup is one page of numbered steps in the order a person thinks about
// them: 1 the name and DNS, 2 the router, 3 the region, 4 the
// certificate, 5 the tailnet. Each step is its own small form, so a
// problem in one never costs what was typed in another.
//
// A form is read into a change of its own fields only, which the store
// applies atomically on top of whatever is saved at that moment
// (config.Store.Update): two forms saved at once, in two tabs, both stay
// saved, and a slow check (a DNS token) runs before, outside the store's
// lock. A form that does not validate is shown again with the typed
// values and a message next to each field, with status 400; everything
// outside the forms (the router's port-forward, the certificate's file
// names) shows what is saved. A form that saves redirects (POST, then
// redirect, then GET).

// change sets the fields of one step on a configuration.
type change func(*config.Config)

// step is one form of the setup page.
type step struct {
	name   string   // its section's anchor, e.g. "ports"
	action string   // where its form posts, e.g. "/setup/ports"
	label  string   // the catalogue's name for it in a message of another step, e.g. "setup.step.ports"
	fields []string // its form fields, named like config paths, for messages
	// read turns the form into the change it asks for, recording what
	// cannot be parsed in errs.
	read func(t *tr, f url.Values, errs fieldErrs) change
}

// steps are the setup's forms, in page order. The functions they name
// are in setupname.go, setupsteps.go, setupcert.go, setuptailnet.go and
// peerrelay.go.
var steps = []step{
	{"name", "/setup/name", "setup.step.name", []string{"hostname", "ddns.provider", "ddns.ipv4", "ddns.ipv6", "ddns.interval", "ddns.rfc2136.server",
		"ddns.rfc2136.zone", "ddns.rfc2136.key_name", "ddns.rfc2136.key_algorithm", "secret",
		"tencentcloud.secret_id", "tencentcloud.secret_key", "alidns.access_key_id", "alidns.access_key_secret"}, readName},
	{"ports", "/setup/ports", "setup.step.ports", []string{"relay.derp_port", "relay.stun_port", "port_mapping.enabled", "reverse_proxy.enabled", "reverse_proxy.public_host",
		"reverse_proxy.public_port", "reverse_proxy.trusted"}, readPorts},
	{"region", "/setup/region", "setup.step.region", []string{"region.id", "region.code", "region.name", "region.node_name"}, readRegion},
	{"cert", "/setup/cert", "setup.step.cert", []string{"cert.mode", "cert.acme_ca", "cert.acme_ca_roots", "cert.acme_email", "cert.pem", "cert.key"}, readCert},
	{"tailnet", "/setup/tailnet", "setup.step.tailnet", []string{"tailnet.control_url", "auth_key"}, readTailnet},
	{"verify", "/setup/verify", "setup.step.verify", []string{"relay.verify_clients", "relay.verify_client_url"}, readVerify},
	{"peerrelay", "/setup/peerrelay", "setup.step.peerrelay", []string{"peer_relay.enabled", "peer_relay.port"}, readPeerRelay},
}

func stepNamed(name string) *step {
	for i := range steps {
		if steps[i].name == name {
			return &steps[i]
		}
	}
	return nil
}

// setupView is the setup page; as JSON it is the current settings (never
// a secret: only whether one is saved).
type setupView struct {
	Config       config.Config         `json:"config"` // as saved
	Form         config.Config         `json:"-"`      // what the forms show: Config, or a failed form's values
	Providers    []config.ProviderInfo `json:"-"`
	SavedSecrets map[string]bool       `json:"saved_secrets"` // e.g. {"cloudflare-token": true}
	Errors       map[string][]string   `json:"errors,omitempty"`
	Typed        map[string]string     `json:"-"` // number fields as typed, when they did not parse
	OtherErrors  []string              `json:"other_errors,omitempty"`
	FailedStep   string                `json:"failed_step,omitempty"`
	PartlySaved  bool                  `json:"partly_saved,omitempty"` // the failed step saved some of its settings
	Resumed      bool                  `json:"-"`                      // the form is a draft from before a login
	LoadError    string                `json:"load_error,omitempty"`
	Forward      forwardView           `json:"port_forward"`
	RegionNotes  []derpmap.Finding     `json:"region_notes,omitempty"`
	Tailnet      tailnetView           `json:"tailnet"`
	PeerRelay    peerRelayView         `json:"peer_relay"`
	CertDir      string                `json:"cert_dir,omitempty"`
	CertUpload   bool                  `json:"-"`           // the manual-certificate form is shown
	DNSChecker   bool                  `json:"dns_checker"` // tokens are checked on save
	ACMECAs      []string              `json:"-"`
	TSIGAlgs     []string              `json:"-"`
}

// fieldErrs are messages by form field.
type fieldErrs map[string][]string

func (e fieldErrs) add(field, msg string) { e[field] = append(e[field], msg) }

// addConfig spreads a config.Validate/Update error over the fields, in
// the user's language.
func (e fieldErrs) addConfig(t *tr, err error) {
	if err == nil {
		return
	}
	var ce config.Errors
	if errors.As(err, &ce) {
		for _, fe := range ce {
			e.add(fe.Path, t.M(fe.ID, fe.Args))
		}
		return
	}
	e.add("", err.Error())
}

// shown is what the setup page shows besides the saved settings: a form
// that failed or came back after a login.
type shown struct {
	step    string    // the form's step, or ""
	change  change    // what the form asked for, shown in its fields
	errs    fieldErrs // why it was not saved
	partly  bool      // part of it was saved (the tailnet login)
	resumed bool      // it is a draft from before a login
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request, u *user) {
	sh := shown{}
	if d := s.sessions.takeDraft(u.session, "/setup"); d != nil {
		sh.resumed = true
		sh.step, _, _ = strings.Cut(strings.TrimPrefix(d.Action, "/setup/"), "/")
		if st := stepNamed(sh.step); st != nil && st.action == d.Action {
			sh.change = st.read(s.tr(r), d.Values, fieldErrs{})
		}
	}
	s.renderSetup(w, r, u, http.StatusOK, sh)
}

// renderSetup shows the setup page: the saved settings, with a failed or
// resumed form's values in its fields.
func (s *Server) renderSetup(w http.ResponseWriter, r *http.Request, u *user, status int, sh shown) {
	t := s.tr(r)
	c := s.o.Store.Config()
	form := c
	if sh.change != nil {
		sh.change(&form)
	}
	v := setupView{
		Config:       c,
		Form:         form,
		Providers:    config.Providers,
		SavedSecrets: map[string]bool{},
		FailedStep:   sh.step,
		PartlySaved:  sh.partly,
		Resumed:      sh.resumed,
		Forward:      s.forward(t, c),
		RegionNotes:  t.findings(derpmap.RegionIDFindings(c.Region.ID)),
		CertDir:      s.o.CertDir,
		CertUpload:   s.o.InstallManualCert != nil,
		DNSChecker:   s.o.CheckDNSCredential != nil,
		ACMECAs:      []string{"production", "staging"},
		TSIGAlgs:     []string{"hmac-sha256.", "hmac-sha512.", "hmac-sha384.", "hmac-sha224.", "hmac-sha1."},
	}
	for _, name := range config.DNSSecrets {
		v.SavedSecrets[name] = s.o.Store.HasSecret(name)
	}
	if err := s.o.Store.LoadError(); err != nil {
		v.LoadError = err.Error()
	}
	if len(sh.errs) > 0 {
		v.Errors = map[string][]string{}
		v.Typed = map[string]string{}
		own := stepNamed(sh.step)
		for field, msgs := range sh.errs {
			if typed, ok := strings.CutPrefix(field, typedPrefix); ok {
				v.Typed[typed] = msgs[0]
				continue
			}
			if own != nil && slices.Contains(own.fields, field) {
				v.Errors[field] = msgs
				continue
			}
			for _, m := range msgs {
				if field != "" {
					m = t.S("setup.other_field", "Step", fieldLabel(t, field), "Msg", m)
				}
				v.OtherErrors = append(v.OtherErrors, m)
			}
		}
		slices.Sort(v.OtherErrors)
	}
	ctx, cancel := reqCtx(r, 4*time.Second)
	defer cancel()
	v.Tailnet = s.tailnetState(ctx, t, c)
	v.PeerRelay = s.peerRelayState(ctx, t, c)
	s.render(w, r, status, "setup", s.newPage(u, t.S("nav.setup"), "setup", v))
}

// fieldLabel names a field of another step, for a message in this one.
func fieldLabel(t *tr, path string) string {
	for _, st := range steps {
		if slices.Contains(st.fields, path) {
			return t.S(st.label, "Field", path)
		}
	}
	return path
}

// failSetup shows the page again with what the user typed and why it
// was not saved.
func (s *Server) failSetup(w http.ResponseWriter, r *http.Request, u *user, step string, ch change, errs fieldErrs) {
	s.renderSetup(w, r, u, http.StatusBadRequest, shown{step: step, change: ch, errs: errs})
}

// apply saves a step's change on top of the stored configuration and
// returns the configuration saved, or shows the form again with why not.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, u *user, step string, ch change, errs fieldErrs) (config.Config, bool) {
	var saved config.Config
	if len(errs) == 0 {
		var err error
		saved, err = s.update(ch)
		errs.addConfig(s.tr(r), err)
	}
	if len(errs) > 0 {
		s.failSetup(w, r, u, step, ch, errs)
		return config.Config{}, false
	}
	return saved, true
}

// update applies ch atomically to the stored configuration (validated
// there) and returns the configuration saved.
func (s *Server) update(ch change) (config.Config, error) {
	var saved config.Config
	err := s.o.Store.Update(func(c *config.Config) error {
		ch(c)
		saved = *c
		return nil
	})
	return saved, err
}

// done tells the user what was saved (msg, in their language), on the
// page the redirect shows.
func (s *Server) done(w http.ResponseWriter, r *http.Request, u *user, step, msg string) {
	s.flash(u, step, msg)
	http.Redirect(w, r, "/setup#"+step, http.StatusSeeOther)
}

// typedPrefix marks an entry of fieldErrs that holds what the user typed
// into a number field that did not parse, so the form can show it again
// (the config, holding an int, cannot).
const typedPrefix = "="

// atoi parses a number field, recording a plain error.
func atoi(t *tr, errs fieldErrs, f url.Values, field string) (int, bool) {
	v := strings.TrimSpace(f.Get(field))
	n, err := strconv.Atoi(v)
	if v == "" {
		errs.add(field, t.S("setup.err.need_number"))
		return 0, false
	}
	if err != nil {
		errs.add(field, t.S("setup.err.not_number", "Value", strconv.Quote(v)))
		errs[typedPrefix+field] = []string{v}
		return 0, false
	}
	return n, true
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func checked(f url.Values, field string) bool {
	v := f.Get(field)
	return v == "on" || v == "true" || v == "1"
}
