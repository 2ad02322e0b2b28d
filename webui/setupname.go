package webui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
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

func readName(f url.Values, errs fieldErrs) change {
	host := config.NormalizeHostname(f.Get("hostname"))
	provider := f.Get("ddns.provider")
	v4, v6 := checked(f, "ddns.ipv4"), checked(f, "ddns.ipv6")
	var interval *config.Duration
	if iv := strings.TrimSpace(f.Get("ddns.interval")); iv != "" {
		d, err := time.ParseDuration(iv)
		if err != nil {
			errs.add("ddns.interval", fmt.Sprintf("%q is not a duration such as 2m or 90s", iv))
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
	f := r.PostForm
	errs := fieldErrs{}
	ch := readName(f, errs)
	old := s.o.Store.Config()
	c := old
	ch(&c)
	if len(errs) == 0 {
		errs.addConfig(c.Validate())
	}
	secretName := config.ProviderSecret(c.DDNS.Provider)
	field := secretField(c.DDNS.Provider)
	typed := typedSecret(f, c.DDNS.Provider, errs)
	checkedMsg := ""
	if len(errs) == 0 && secretName != "" {
		checkedMsg = s.checkCredential(r, old, c, secretName, typed, errs)
	}
	fail := func() {
		if typed != "" {
			errs.add(field, "For safety the credential you typed is not shown again; paste it once more.")
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
	errs.addConfig(err)
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
	s.done(w, r, u, "ports", "Saved the name %s and the DNS settings.%s", saved.Hostname, checkedMsg)
}

// checkCredential checks the credential of the settings c about to
// replace old, if anything the check depends on changed, and returns the
// sentence to add to the "saved" message. A refusal lands in errs.
func (s *Server) checkCredential(r *http.Request, old, c config.Config, secretName, typed string, errs fieldErrs) string {
	field := secretField(c.DDNS.Provider)
	secret := typed
	if secret == "" {
		saved, err := s.o.Store.Secret(secretName)
		if err != nil {
			errs.add(field, "The saved credential could not be read: "+err.Error())
			return ""
		}
		secret = saved
	}
	changed := typed != "" || old.Hostname != c.Hostname || !reflect.DeepEqual(old.DDNS, c.DDNS)
	switch {
	case secret == "":
		errs.add(field, missingSecret(c.DDNS.Provider))
	case !changed:
	case s.o.CheckDNSCredential == nil:
		return " (The credential could not be checked: this build has no checker.)"
	default:
		ctx, cancel := reqCtx(r, dnsCheckTimeout)
		err := s.o.CheckDNSCredential(ctx, c, secret)
		cancel()
		switch {
		case errors.Is(err, ErrNotChecked):
			return " (The credential cannot be checked in advance for this provider; the status page shows whether the first update works.)"
		case err != nil:
			errs.add(field, credentialProblem(err, secret))
		default:
			return " The DNS provider accepted the credential."
		}
	}
	return ""
}

// credentialProblem says why a check failed, in the words that tell the
// user what to fix: the box's connection, the credential, or what the
// credential may do (ddns.CheckError).
func credentialProblem(err error, secret string) string {
	msg := scrubKey(err.Error(), secret)
	kind := ddns.CheckKind("")
	if ce := new(ddns.CheckError); errors.As(err, &ce) {
		kind = ce.Kind
	} else if errors.Is(err, context.DeadlineExceeded) {
		kind = ddns.CheckUnreachable
	}
	switch kind {
	case ddns.CheckUnreachable:
		return "The box could not reach the DNS provider to check this (" + msg + "). Nothing was saved: check the box's Internet connection, then save again."
	case ddns.CheckBadCredential:
		return "The DNS provider does not accept this credential: " + msg + ". Nothing was saved."
	case ddns.CheckRefused:
		return "The DNS provider accepts the credential but refuses what the relay needs it for: " + msg + ". Nothing was saved."
	}
	// A credential of the wrong shape (found before any call), or a
	// clock the provider says is off: the provider's own sentence says
	// what to fix.
	return "The credential check failed: " + msg + ". Nothing was saved."
}
