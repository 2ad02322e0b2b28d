package webui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
)

// Step 1: the relay's public name and the DNS provider that keeps it
// pointed at the line, with the provider's credential, which is checked
// with the provider before anything is stored. The check takes up to
// dnsCheckTimeout and runs outside the store's lock; the save then sets
// only this step's fields.

// dnsCheckTimeout bounds the credential check (the page says so while it
// runs).
const dnsCheckTimeout = 20 * time.Second

// ErrNotChecked is what Options.CheckDNSCredential returns for a
// credential it has no way to check before use.
var ErrNotChecked = errors.New("this credential cannot be checked in advance")

func readName(t *tr, f url.Values, errs fieldErrs) change {
	host := config.NormalizeHostname(f.Get("hostname"))
	provider := f.Get("ddns.provider")
	v4, v6 := checked(f, "ddns.ipv4"), checked(f, "ddns.ipv6")
	var interval *config.Duration
	if iv := strings.TrimSpace(f.Get("ddns.interval")); iv != "" {
		d, err := time.ParseDuration(iv)
		if err != nil {
			errs.add("ddns.interval", t.S("setup.err.not_duration", "Value", strconv.Quote(iv)))
			errs[typedPrefix+"ddns.interval"] = []string{iv}
		} else {
			interval = new(config.Duration(d))
		}
	}
	var rfc *config.RFC2136
	if provider == config.ProviderRFC2136 {
		rfc = &config.RFC2136{
			Server:       strings.TrimSpace(f.Get("ddns.rfc2136.server")),
			Zone:         strings.TrimSpace(f.Get("ddns.rfc2136.zone")),
			KeyName:      strings.TrimSpace(f.Get("ddns.rfc2136.key_name")),
			KeyAlgorithm: f.Get("ddns.rfc2136.key_algorithm"),
		}
	}
	return func(c *config.Config) {
		c.Hostname = host
		c.DDNS.Provider, c.DDNS.IPv4, c.DDNS.IPv6 = provider, v4, v6
		if interval != nil {
			c.DDNS.Interval = *interval
		}
		if rfc != nil {
			c.DDNS.RFC2136 = *rfc
		}
	}
}

// saveName is step 1.
func (s *Server) saveName(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	f := r.PostForm
	errs := fieldErrs{}
	ch := readName(t, f, errs)
	old := s.o.Store.Config()
	c := old
	ch(&c)
	if len(errs) == 0 {
		errs.addConfig(t, c.Validate())
	}
	secretName := config.ProviderSecret(c.DDNS.Provider)
	field := secretField(c.DDNS.Provider)
	typed := typedSecret(t, f, c.DDNS.Provider, errs)
	checkedMsg := ""
	if len(errs) == 0 && secretName != "" {
		checkedMsg = s.checkCredential(r, t, old, c, secretName, typed, errs)
	}
	fail := func() {
		if typed != "" {
			errs.add(field, t.S("setup.err.secret_again"))
		}
		s.failSetup(w, r, u, "name", ch, errs)
	}
	if len(errs) > 0 {
		fail()
		return
	}
	// The secret goes first, so the ddns service, told of the new
	// settings, finds the credential that was checked with them. If the
	// settings then fail to save, the previous secret is put back.
	if typed != "" {
		prev, err := s.o.Store.Secret(secretName)
		if err == nil {
			err = s.o.Store.SetSecret(secretName, typed)
		}
		if err != nil {
			errs.add(field, err.Error())
			fail()
			return
		}
		defer func() {
			if len(errs) > 0 {
				if err := s.o.Store.SetSecret(secretName, prev); err != nil {
					s.o.Logf("webui: putting the previous DNS credential back: %v", err)
				}
			}
		}()
	}
	saved, err := s.update(ch)
	errs.addConfig(t, err)
	if len(errs) > 0 {
		fail()
		return
	}
	if checked(f, "forget_secrets") {
		for _, name := range config.DNSSecrets {
			if name != secretName {
				if err := s.o.Store.SetSecret(name, ""); err != nil {
					s.o.Logf("webui: forgetting the %s: %v", name, err)
				}
			}
		}
	}
	s.done(w, r, u, "ports", t.S("flash.name", "Host", saved.Hostname)+checkedMsg)
}

// checkCredential checks the credential of the settings c about to
// replace old, if anything the check depends on changed, and returns the
// sentence to add to the "saved" message. A refusal lands in errs.
func (s *Server) checkCredential(r *http.Request, t *tr, old, c config.Config, secretName, typed string, errs fieldErrs) string {
	field := secretField(c.DDNS.Provider)
	secret := typed
	if secret == "" {
		saved, err := s.o.Store.Secret(secretName)
		if err != nil {
			errs.add(field, t.S("setup.err.secret_unreadable", "Err", err.Error()))
			return ""
		}
		secret = saved
	}
	changed := typed != "" || old.Hostname != c.Hostname || !reflect.DeepEqual(old.DDNS, c.DDNS)
	switch {
	case secret == "":
		errs.add(field, missingSecret(t, c.DDNS.Provider))
	case !changed:
	case s.o.CheckDNSCredential == nil:
		return t.S("flash.name_no_checker")
	default:
		ctx, cancel := reqCtx(r, dnsCheckTimeout)
		err := s.o.CheckDNSCredential(ctx, c, secret)
		cancel()
		switch {
		case errors.Is(err, ErrNotChecked):
			return t.S("flash.name_not_checkable")
		case err != nil:
			errs.add(field, credentialProblem(t, err, secret))
		default:
			return t.S("flash.name_accepted")
		}
	}
	return ""
}

// credentialProblem says why a check failed, in the words that tell the
// user what to fix: the box's connection, the credential, or what the
// credential may do (ddns.CheckError), with the provider's reason in
// the user's language where it is one we know (providerProblem).
func credentialProblem(t *tr, err error, secret string) string {
	msg := scrubKey(providerProblem(t, err), secret)
	kind := ddns.CheckKind("")
	if ce := new(ddns.CheckError); errors.As(err, &ce) {
		kind = ce.Kind
	} else if errors.Is(err, context.DeadlineExceeded) {
		kind = ddns.CheckUnreachable
	}
	switch kind {
	case ddns.CheckUnreachable:
		return t.S("setup.err.check_unreachable", "Msg", msg)
	case ddns.CheckBadCredential:
		return t.S("setup.err.check_bad", "Msg", msg)
	case ddns.CheckRefused:
		return t.S("setup.err.check_refused", "Msg", msg)
	}
	// A credential of the wrong shape (found before any call), or a
	// clock the provider says is off: the provider's own sentence says
	// what to fix.
	return t.S("setup.err.check_failed", "Msg", msg)
}

// userMessage is an error that names its sentence for the catalogues: the
// DNS providers' API errors and the failures they share (ddns/apiclient,
// ddns/records).
type userMessage interface {
	UserMessage() (id string, args map[string]any)
}

// providerProblem is err's sentence in the user's language where err
// names one, else err's own text.
func providerProblem(t *tr, err error) string {
	var m userMessage
	if errors.As(err, &m) {
		return t.M(m.UserMessage())
	}
	return err.Error()
}
