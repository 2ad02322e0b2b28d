package webui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// A form posted after its session ended (idle for a day, a week old, or
// logged out in another tab) is not lost. The answer is the login page,
// carrying what was typed in hidden fields (secrets left out); after the
// login the browser goes back to the form's page, which shows the typed
// values again, marked as not saved, for the person to check and save.
// Nothing is saved without a fresh look: the values came with a request
// nobody was logged in for.
//
// The values travel with the login form rather than waiting on the
// server, so an unauthenticated request cannot make the box keep
// anything.

// maxDraft bounds the typed values a login form carries back.
const maxDraft = 64 << 10

// draftPrefix marks the login form's fields that carry a draft.
const draftPrefix = "draft."

// neverKept are the fields no draft keeps: secrets, and the old token.
var neverKept = []string{"csrf", "secret", "auth_key", "cert.key", "password"}

// formPage returns the page and section a form posting to action is on.
func formPage(action string) (page, anchor string, ok bool) {
	switch action {
	case "/setup/name":
		return "/setup", "name", true
	case "/setup/ports":
		return "/setup", "ports", true
	case "/setup/region":
		return "/setup", "region", true
	case "/setup/cert", "/setup/certfiles":
		return "/setup", "cert", true
	case "/setup/tailnet", "/setup/tailnet/logout":
		return "/setup", "tailnet", true
	case "/setup/verify":
		return "/setup", "verify", true
	case "/derpmap/check":
		return "/derpmap", "check", true
	}
	return "", "", false
}

// loginDraft is a draft as the login form carries it.
type loginDraft struct {
	Action string
	Fields []draftField
}

type draftField struct{ Name, Value string }

// loginToResume answers a browser's form post without a session: the
// login page, with the form's values, leading back to the form.
func (s *Server) loginToResume(w http.ResponseWriter, r *http.Request) {
	t := s.tr(r)
	v := loginView{Next: "/"}
	page, anchor, ok := formPage(r.URL.Path)
	if ok {
		v.Next = page + "#" + anchor
		v.Notice = t.S("login.logged_out")
	}
	if ok && s.parseBody(w, r) == nil {
		d := &draft{Page: page, Action: r.URL.Path, Values: url.Values{}}
		size := 0
		for name, vals := range r.PostForm {
			if slices.Contains(neverKept, name) || len(vals) == 0 {
				continue
			}
			d.Values.Set(name, vals[0])
			size += len(name) + len(vals[0])
		}
		if size <= maxDraft {
			v.Draft = d.login()
			v.Notice += t.S("login.resume")
		} else {
			v.Notice += t.S("login.resume_too_big")
		}
	}
	s.renderLogin(w, r, http.StatusUnauthorized, v)
}

// login turns a draft into the login form's hidden fields.
func (d *draft) login() *loginDraft {
	if d == nil {
		return nil
	}
	ld := &loginDraft{Action: d.Action}
	for name, vals := range d.Values {
		ld.Fields = append(ld.Fields, draftField{draftPrefix + name, vals[0]})
	}
	slices.SortFunc(ld.Fields, func(a, b draftField) int { return strings.Compare(a.Name, b.Name) })
	return ld
}

// draftFromLogin reads the draft a login form carries, or nil.
func draftFromLogin(f url.Values) *draft {
	page, _, ok := formPage(f.Get("draft_action"))
	if !ok {
		return nil
	}
	d := &draft{Page: page, Action: f.Get("draft_action"), Values: url.Values{}}
	for name, vals := range f {
		if field, ok := strings.CutPrefix(name, draftPrefix); ok && !slices.Contains(neverKept, field) && len(vals) > 0 {
			d.Values.Set(field, vals[0])
		}
	}
	return d
}
