package webui

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
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
// problem in one never costs what was typed in another. A form that does
// not validate is shown again with the typed values and a message next to
// each field, with status 400; a form that saves redirects (POST, then
// redirect, then GET).

// steps lists each step's form fields (named like config paths), so a
// validation error lands next to its field, or, for a field of another
// step, in the failed step's box.
var steps = map[string][]string{
	"name": {"hostname", "ddns.provider", "ddns.ipv4", "ddns.ipv6", "ddns.interval", "ddns.rfc2136.server",
		"ddns.rfc2136.zone", "ddns.rfc2136.key_name", "ddns.rfc2136.key_algorithm", "secret",
		"tencentcloud.secret_id", "tencentcloud.secret_key", "alidns.access_key_id", "alidns.access_key_secret"},
	"ports": {"relay.derp_port", "relay.stun_port", "port_mapping.enabled", "reverse_proxy.enabled", "reverse_proxy.public_host",
		"reverse_proxy.public_port", "reverse_proxy.trusted"},
	"region":    {"region.id", "region.code", "region.name", "region.node_name"},
	"cert":      {"cert.mode", "cert.acme_ca", "cert.acme_email", "cert.pem", "cert.key"},
	"tailnet":   {"tailnet.control_url", "auth_key"},
	"verify":    {"relay.verify_clients", "relay.verify_client_url"},
	"peerrelay": {"peer_relay.enabled", "peer_relay.port"},
}

// setupView is the setup page; as JSON it is the current settings (never
// a secret: only whether one is saved).
type setupView struct {
	Config       config.Config         `json:"config"`
	Providers    []config.ProviderInfo `json:"-"`
	SavedSecrets map[string]bool       `json:"saved_secrets"` // e.g. {"cloudflare-token": true}
	Errors       map[string][]string   `json:"errors,omitempty"`
	Typed        map[string]string     `json:"-"` // number fields as typed, when they did not parse
	OtherErrors  []string              `json:"other_errors,omitempty"`
	FailedStep   string                `json:"failed_step,omitempty"`
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

// forwardView is the port-forward the user must make on the router.
type forwardView struct {
	LAN   []string      `json:"lan"`             // the box's LAN IPv4 addresses
	Rules []forwardRule `json:"rules"`           // one per protocol
	IPv6  string        `json:"ipv6,omitempty"`  // the box's global IPv6, if known
	Guess bool          `json:"guess,omitempty"` // no LAN address found: the rules say "this box"
}

type forwardRule struct {
	What  string `json:"what"`  // e.g. "DERP (TLS)"
	Proto string `json:"proto"` // "TCP" or "UDP"
	Port  int    `json:"port"`  // outside and inside
	To    string `json:"to"`    // e.g. "192.168.1.23"
}

// ErrNotChecked is what Options.CheckDNSCredential returns for a
// credential it has no way to check before use.
var ErrNotChecked = errors.New("this credential cannot be checked in advance")

// fieldErrs are messages by form field.
type fieldErrs map[string][]string

func (e fieldErrs) add(field, msg string) { e[field] = append(e[field], msg) }

// addConfig spreads a config.Validate/Save error over the fields.
func (e fieldErrs) addConfig(err error) {
	if err == nil {
		return
	}
	var ce config.Errors
	if errors.As(err, &ce) {
		for _, fe := range ce {
			e.add(fe.Path, fe.Msg)
		}
		return
	}
	e.add("", err.Error())
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request, u *user) {
	s.renderSetup(w, r, u, http.StatusOK, s.o.Store.Config(), "", nil)
}

// renderSetup shows the setup page for c (the saved config, or the one
// a failed form tried to save).
func (s *Server) renderSetup(w http.ResponseWriter, r *http.Request, u *user, status int, c config.Config, failed string, errs fieldErrs) {
	v := setupView{
		Config:       c,
		Providers:    config.Providers,
		SavedSecrets: map[string]bool{},
		FailedStep:   failed,
		Forward:      s.forward(c),
		RegionNotes:  derpmap.RegionIDFindings(c.Region.ID),
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
	if len(errs) > 0 {
		v.Errors = map[string][]string{}
		v.Typed = map[string]string{}
		for field, msgs := range errs {
			if typed, ok := strings.CutPrefix(field, typedPrefix); ok {
				v.Typed[typed] = msgs[0]
				continue
			}
			if slices.Contains(steps[failed], field) {
				v.Errors[field] = msgs
				continue
			}
			for _, m := range msgs {
				if field != "" {
					m = fieldLabel(field) + ": " + m
				}
				v.OtherErrors = append(v.OtherErrors, m)
			}
		}
		slices.Sort(v.OtherErrors)
	}
	ctx, cancel := reqCtx(r, 4*time.Second)
	defer cancel()
	v.Tailnet = s.tailnetState(ctx, c)
	v.PeerRelay = s.peerRelayState(ctx, c)
	s.render(w, r, status, "setup", s.newPage(u, "Setup", "setup", v))
}

// fieldLabel names a field of another step, for a message in this one.
func fieldLabel(path string) string {
	for _, st := range []struct{ step, label string }{
		{"name", "Step 1, name and DNS"}, {"ports", "Step 2, ports"}, {"region", "Step 3, region"},
		{"cert", "Step 4, certificate"}, {"tailnet", "Step 5, tailnet"}, {"verify", "Step 5, verify clients"},
		{"peerrelay", "Peer relay"},
	} {
		if slices.Contains(steps[st.step], path) {
			return st.label + " (" + path + ")"
		}
	}
	return path
}

// forward works out the router's port-forward for c.
func (s *Server) forward(c config.Config) forwardView {
	var v forwardView
	if s.o.LANAddrs != nil {
		for _, a := range s.o.LANAddrs() {
			if a.Is4() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
				v.LAN = append(v.LAN, a.String())
			}
		}
	}
	to := "this box's LAN address"
	if len(v.LAN) > 0 {
		to = v.LAN[0]
	} else {
		v.Guess = true
	}
	v.Rules = []forwardRule{
		{"DERP (TLS)", "TCP", c.Relay.DERPPort, to},
		{"STUN", "UDP", c.Relay.STUNPort, to},
	}
	switch {
	case c.ReverseProxy.Enabled && c.DialHost() != c.Hostname:
		// The proxy answers elsewhere (a VPS, say): only STUN (UDP)
		// comes to the home line.
		v.Rules = v.Rules[1:]
	case c.ReverseProxy.Enabled:
		v.Rules[0] = forwardRule{"DERP (TLS), to your reverse proxy, which forwards to TCP " + strconv.Itoa(c.Relay.DERPPort) + " on this box", "TCP", c.ReverseProxy.PublicPort, "your reverse proxy"}
	}
	if c.PeerRelay.Enabled {
		v.Rules = append(v.Rules, forwardRule{"Tailscale peer relay", "UDP", c.PeerRelay.Port, to})
	}
	if s.o.DDNSStatus != nil {
		if ip := s.o.DDNSStatus().PublicIPv6; ip.IsValid() {
			v.IPv6 = ip.String()
		}
	}
	return v
}

// failSetup shows the page again with what the user typed and why it
// was not saved.
func (s *Server) failSetup(w http.ResponseWriter, r *http.Request, u *user, step string, c config.Config, errs fieldErrs) {
	s.renderSetup(w, r, u, http.StatusBadRequest, c, step, errs)
}

// save stores c, or shows why not.
func (s *Server) save(w http.ResponseWriter, r *http.Request, u *user, step string, c config.Config, errs fieldErrs) bool {
	if len(errs) == 0 {
		errs.addConfig(c.Validate())
	}
	if len(errs) == 0 {
		errs.addConfig(s.o.Store.Save(c))
	}
	if len(errs) > 0 {
		s.failSetup(w, r, u, step, c, errs)
		return false
	}
	return true
}

func (s *Server) done(w http.ResponseWriter, r *http.Request, u *user, step, format string, args ...any) {
	s.flash(u, step, format, args...)
	http.Redirect(w, r, "/setup#"+step, http.StatusSeeOther)
}

// typedPrefix marks an entry of fieldErrs that holds what the user typed
// into a number field that did not parse, so the form can show it again
// (the config, holding an int, cannot).
const typedPrefix = "="

// atoi parses a number field, recording a plain error.
func atoi(errs fieldErrs, f map[string][]string, field string, dst *int) {
	v := strings.TrimSpace(first(f[field]))
	n, err := strconv.Atoi(v)
	if v == "" {
		errs.add(field, "This needs a number.")
		return
	}
	if err != nil {
		errs.add(field, fmt.Sprintf("%q is not a whole number", v))
		errs[typedPrefix+field] = []string{v}
		return
	}
	*dst = n
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func checked(f map[string][]string, field string) bool {
	v := first(f[field])
	return v == "on" || v == "true" || v == "1"
}

// saveName is step 1: the hostname and the DNS provider with its
// credential, which is checked before anything is stored.
func (s *Server) saveName(w http.ResponseWriter, r *http.Request, u *user) {
	f := r.PostForm
	old := s.o.Store.Config()
	c := old
	errs := fieldErrs{}
	c.Hostname = strings.TrimSpace(f.Get("hostname"))
	c.DDNS.Provider = f.Get("ddns.provider")
	c.DDNS.IPv4 = checked(f, "ddns.ipv4")
	c.DDNS.IPv6 = checked(f, "ddns.ipv6")
	if iv := strings.TrimSpace(f.Get("ddns.interval")); iv != "" {
		d, err := time.ParseDuration(iv)
		if err != nil {
			errs.add("ddns.interval", fmt.Sprintf("%q is not a duration such as 2m or 90s", iv))
			errs[typedPrefix+"ddns.interval"] = []string{iv}
		}
		c.DDNS.Interval = config.Duration(d)
	}
	if c.DDNS.Provider == config.ProviderRFC2136 {
		c.DDNS.RFC2136 = config.RFC2136{
			Server:       strings.TrimSpace(f.Get("ddns.rfc2136.server")),
			Zone:         strings.TrimSpace(f.Get("ddns.rfc2136.zone")),
			KeyName:      strings.TrimSpace(f.Get("ddns.rfc2136.key_name")),
			KeyAlgorithm: f.Get("ddns.rfc2136.key_algorithm"),
		}
	}
	secretName := config.ProviderSecret(c.DDNS.Provider)
	field := secretField(c.DDNS.Provider)
	typed := typedSecret(f, c.DDNS.Provider, errs)
	if len(errs) == 0 {
		errs.addConfig(c.Validate())
	}
	checkedMsg := ""
	if len(errs) == 0 && secretName != "" {
		secret := typed
		if secret == "" {
			saved, err := s.o.Store.Secret(secretName)
			if err != nil {
				errs.add(field, "The saved credential could not be read: "+err.Error())
			}
			secret = saved
		}
		changed := typed != "" || old.Hostname != c.Hostname || !reflect.DeepEqual(old.DDNS, c.DDNS)
		switch {
		case len(errs) > 0:
		case secret == "":
			errs.add(field, missingSecret(c.DDNS.Provider))
		case changed && s.o.CheckDNSCredential != nil:
			ctx, cancel := reqCtx(r, 20*time.Second)
			err := s.o.CheckDNSCredential(ctx, c, secret)
			cancel()
			if errors.Is(err, ErrNotChecked) {
				checkedMsg = " (The credential cannot be checked in advance for this provider; the status page shows whether the first update works.)"
			} else if err != nil {
				errs.add(field, "The DNS provider did not accept this: "+scrubKey(err.Error(), secret)+". Nothing was saved.")
			} else {
				checkedMsg = " The DNS provider accepted the credential."
			}
		case changed:
			checkedMsg = " (The credential could not be checked: this build has no checker.)"
		}
	}
	if len(errs) > 0 {
		if typed != "" {
			errs.add(field, "For safety the credential you typed is not shown again; paste it once more.")
		}
		s.failSetup(w, r, u, "name", c, errs)
		return
	}
	if typed != "" {
		if err := s.o.Store.SetSecret(secretName, typed); err != nil {
			errs.add(field, err.Error())
			s.failSetup(w, r, u, "name", c, errs)
			return
		}
	}
	if checked(f, "forget_secrets") {
		for _, name := range config.DNSSecrets {
			if name != secretName {
				if err := s.o.Store.SetSecret(name, ""); err != nil {
					errs.add(field, err.Error())
				}
			}
		}
	}
	if !s.save(w, r, u, "name", c, errs) {
		return
	}
	s.done(w, r, u, "ports", "Saved the name %s and the DNS settings.%s", c.Hostname, checkedMsg)
}

// savePorts is step 2.
func (s *Server) savePorts(w http.ResponseWriter, r *http.Request, u *user) {
	c := s.o.Store.Config()
	errs := fieldErrs{}
	f := r.PostForm
	atoi(errs, f, "relay.derp_port", &c.Relay.DERPPort)
	atoi(errs, f, "relay.stun_port", &c.Relay.STUNPort)
	c.PortMapping.Enabled = checked(f, "port_mapping.enabled")
	rp := &c.ReverseProxy
	rp.Enabled = checked(f, "reverse_proxy.enabled")
	rp.PublicHost = strings.TrimSpace(f.Get("reverse_proxy.public_host"))
	rp.Trusted = strings.FieldsFunc(f.Get("reverse_proxy.trusted"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	rp.PublicPort = 0 // empty: validation says what to enter
	if strings.TrimSpace(f.Get("reverse_proxy.public_port")) != "" {
		atoi(errs, f, "reverse_proxy.public_port", &rp.PublicPort)
	}
	if !s.save(w, r, u, "ports", c, errs) {
		return
	}
	if rp.Enabled {
		s.done(w, r, u, "ports", "Saved: clients reach the relay through your reverse proxy at %s; it forwards to TCP %d on this box, and STUN stays on UDP %d. Paste the new DERP map where you use it.",
			net.JoinHostPort(c.DialHost(), strconv.Itoa(c.DialPort())), c.Relay.DERPPort, c.Relay.STUNPort)
		return
	}
	router := "Make the router's port-forward match."
	if c.PortMapping.Enabled {
		router = "The box asks the router to forward them; Status shows what it answered."
	}
	s.done(w, r, u, "ports", "Saved the ports: TCP %d for DERP, UDP %d for STUN. %s", c.Relay.DERPPort, c.Relay.STUNPort, router)
}

// saveRegion is step 3.
func (s *Server) saveRegion(w http.ResponseWriter, r *http.Request, u *user) {
	c := s.o.Store.Config()
	errs := fieldErrs{}
	f := r.PostForm
	atoi(errs, f, "region.id", &c.Region.ID)
	c.Region.Code = strings.TrimSpace(f.Get("region.code"))
	c.Region.Name = strings.TrimSpace(f.Get("region.name"))
	c.Region.NodeName = strings.TrimSpace(f.Get("region.node_name"))
	if s.save(w, r, u, "region", c, errs) {
		s.done(w, r, u, "region", "Saved region %d (%s). Paste the new DERP map where you use it.", c.Region.ID, c.Region.Code)
	}
}

// saveCert is step 4.
func (s *Server) saveCert(w http.ResponseWriter, r *http.Request, u *user) {
	c := s.o.Store.Config()
	f := r.PostForm
	c.Cert.Mode = config.CertMode(f.Get("cert.mode"))
	c.Cert.InsecureForTests = c.Cert.Mode == config.CertSelfSigned && checked(f, "cert.insecure_for_tests")
	c.Cert.ACMECA = f.Get("cert.acme_ca")
	if custom := strings.TrimSpace(f.Get("cert.acme_ca_url")); custom != "" {
		c.Cert.ACMECA = custom
	}
	if c.Cert.ACMECA == "production" {
		c.Cert.ACMECA = ""
	}
	c.Cert.ACMEEmail = strings.TrimSpace(f.Get("cert.acme_email"))
	if s.save(w, r, u, "cert", c, fieldErrs{}) {
		s.done(w, r, u, "cert", "Saved the certificate mode %s.", c.Cert.Mode)
	}
}

// installCert stores a certificate and key pasted for manual mode. The
// key is a secret: it is never shown again, not even after a mistake.
func (s *Server) installCert(w http.ResponseWriter, r *http.Request, u *user) {
	c := s.o.Store.Config()
	errs := fieldErrs{}
	crtPEM := strings.TrimSpace(r.PostForm.Get("cert.pem"))
	keyPEM := strings.TrimSpace(r.PostForm.Get("cert.key"))
	switch {
	case s.o.InstallManualCert == nil:
		errs.add("cert.pem", "This box cannot take a certificate here.")
	case crtPEM == "":
		errs.add("cert.pem", "Paste the certificate (PEM, with its chain), starting with -----BEGIN CERTIFICATE-----.")
	case keyPEM == "":
		errs.add("cert.key", "Paste the private key (PEM), starting with -----BEGIN … PRIVATE KEY-----.")
	}
	if len(errs) == 0 {
		leaf, err := s.o.InstallManualCert(c, []byte(crtPEM+"\n"), []byte(keyPEM+"\n"))
		if err != nil {
			errs.add("cert.pem", "Not installed: "+scrub(err.Error(), keyPEM)+". The certificate in use stays.")
		} else {
			msg := "Installed the certificate for %s, valid until %s."
			if c.Cert.Mode != config.CertManual {
				msg += " Choose Manual above to serve it."
			} else {
				msg += " The relay serves it within seconds, without dropping clients."
			}
			s.done(w, r, u, "cert", msg, c.Hostname, leaf.NotAfter.UTC().Format(time.DateOnly))
			return
		}
	}
	s.failSetup(w, r, u, "cert", c, errs)
}
