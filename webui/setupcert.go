package webui

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
)

// Step 4: where the relay's certificate comes from, and the form that
// takes a certificate of the user's own for manual mode.

func readCert(_ *tr, f url.Values, _ fieldErrs) change {
	mode := config.CertMode(f.Get("cert.mode"))
	insecure := mode == config.CertSelfSigned && checked(f, "cert.insecure_for_tests")
	ca := f.Get("cert.acme_ca")
	if custom := strings.TrimSpace(f.Get("cert.acme_ca_url")); custom != "" {
		ca = custom
	}
	if ca == "production" {
		ca = ""
	}
	email := strings.TrimSpace(f.Get("cert.acme_email"))
	roots := strings.TrimSpace(f.Get("cert.acme_ca_roots"))
	if roots != "" {
		roots += "\n"
	}
	return func(c *config.Config) {
		c.Cert.Mode, c.Cert.InsecureForTests, c.Cert.ACMECA, c.Cert.ACMEEmail = mode, insecure, ca, email
		c.Cert.ACMECARoots = roots
	}
}

// saveCert is step 4.
func (s *Server) saveCert(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	errs := fieldErrs{}
	c, ok := s.apply(w, r, u, "cert", readCert(t, r.PostForm, errs), errs)
	if ok {
		s.done(w, r, u, "cert", t.S("flash.cert", "Mode", t.certMode(string(c.Cert.Mode))))
	}
}

// installCert stores a certificate and key pasted for manual mode. The
// key is a secret: it is never shown again, not even after a mistake.
func (s *Server) installCert(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	c := s.o.Store.Config()
	errs := fieldErrs{}
	crtPEM := strings.TrimSpace(r.PostForm.Get("cert.pem"))
	keyPEM := strings.TrimSpace(r.PostForm.Get("cert.key"))
	switch {
	case s.o.InstallManualCert == nil:
		errs.add("cert.pem", t.S("setup.err.no_cert_upload"))
	case crtPEM == "":
		errs.add("cert.pem", t.S("setup.err.paste_cert"))
	case keyPEM == "":
		errs.add("cert.key", t.S("setup.err.paste_key"))
	}
	if len(errs) == 0 {
		leaf, err := s.o.InstallManualCert(c, []byte(crtPEM+"\n"), []byte(keyPEM+"\n"))
		if err != nil {
			errs.add("cert.pem", t.S("setup.err.not_installed", "Err", scrub(err.Error(), keyPEM)))
		} else {
			id := "flash.cert_installed_manual"
			if c.Cert.Mode != config.CertManual {
				id = "flash.cert_installed"
			}
			s.done(w, r, u, "cert", t.S(id, "Host", c.Hostname, "Until", leaf.NotAfter.UTC().Format(time.DateOnly)))
			return
		}
	}
	s.failSetup(w, r, u, "cert", nil, errs)
}
