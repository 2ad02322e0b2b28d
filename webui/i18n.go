package webui

import (
	"embed"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/internal/usermsg"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// The web UI speaks English and Simplified Chinese. Every sentence it
// shows (page text, flash messages, validation errors, warnings, status
// words) comes from one catalogue per language, locales/en.toml and
// locales/zh-CN.toml, read with go-i18n: a message has a stable ID and
// named arguments ({{.Port}}), so a translation can put them where its
// grammar wants them, and plural forms where English needs them.
//
// The language is the one the person chose with the switch in the page
// header (a cookie, set before a login too), else the best match of the
// browser's Accept-Language, else English. Pages are parsed once per
// language at start, with that language's translator in their functions.
//
// Messages used by templates may hold a little HTML (<code>, <b>, a
// link); their arguments are escaped. Messages used from Go are plain
// text, escaped by the template that shows them. catalogue_test.go keeps
// the catalogues complete and consistent.

//go:embed locales/*.toml
var localeFS embed.FS

// locales are the UI's languages, by their catalogue's name; the first is
// the default and the fallback for a message a catalogue lacks.
var locales = []struct{ tag, name string }{
	{"en", "English"},
	{"zh-CN", "中文"},
}

// langCookie remembers the language chosen with the switch.
const langCookie = "homederp_lang"

// lang is one language of the UI.
type lang struct {
	Tag  string // e.g. "zh-CN": the catalogue's name, the cookie's value, <html lang>
	Name string // in the language itself, for the switch: "中文"
	tr   *tr
	tmpl map[string]*template.Template
}

// loadLocales reads the catalogues into one bundle and makes a lang for
// each.
func loadLocales() ([]*lang, *i18n.Bundle, language.Matcher, error) {
	b := i18n.NewBundle(language.English)
	b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	var langs []*lang
	var tags []language.Tag
	for _, l := range locales {
		f, err := b.LoadMessageFileFS(localeFS, "locales/"+l.tag+".toml")
		if err != nil {
			return nil, nil, nil, fmt.Errorf("webui: reading the %s catalogue: %w", l.tag, err)
		}
		langs = append(langs, &lang{Tag: l.tag, Name: l.name, tr: &tr{loc: i18n.NewLocalizer(b, l.tag), tag: l.tag}})
		tags = append(tags, f.Tag)
	}
	return langs, b, language.NewMatcher(tags), nil
}

// langFor picks the request's language: the switch's cookie, else the
// browser's Accept-Language (Traditional Chinese reads Simplified better
// than English, and the matcher agrees), else English.
func (s *Server) langFor(r *http.Request) *lang {
	if c, err := r.Cookie(langCookie); err == nil {
		for _, l := range s.langs {
			if l.Tag == c.Value {
				return l
			}
		}
	}
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if _, i, conf := s.langMatcher.Match(tags...); conf != language.No {
		return s.langs[i]
	}
	return s.langs[0]
}

// tr is the request's translator.
func (s *Server) tr(r *http.Request) *tr { return s.langFor(r).tr }

// setLang is the language switch: GET /lang?to=zh-CN&next=/setup sets
// the cookie and goes back. It is a plain link so that it works on every
// page, the login page included, without a form or a script; a foreign
// page that follows it can change nothing but the language.
func (s *Server) setLang(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	for _, l := range s.langs {
		if l.Tag == to {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l.Tag, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		}
	}
	http.Redirect(w, r, langNext(r.URL.Query().Get("next")), http.StatusSeeOther)
}

// langNext is safeNext, which also lets the switch go back to the login
// page (a login never does: it would come back to itself).
func langNext(next string) string {
	if rest, ok := strings.CutPrefix(next, "/login"); ok && (rest == "" || rest[0] == '?') {
		if alt := "/x" + rest; safeNext(alt) == alt {
			return next
		}
	}
	return safeNext(next)
}

// langLinks are the switch's links to the other languages, back to the
// page shown (a GET page; after a POST, the page the form is on).
func (s *Server) langLinks(r *http.Request, cur *lang, pagePath string) []langLink {
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		next = pagePath
	}
	var out []langLink
	for _, l := range s.langs {
		if l != cur {
			out = append(out, langLink{Tag: l.Tag, Name: l.Name, URL: "/lang?to=" + l.Tag + "&next=" + url.QueryEscape(next)})
		}
	}
	return out
}

type langLink struct{ Tag, Name, URL string }

// tr translates into one language.
type tr struct {
	loc *i18n.Localizer
	tag string
}

// S returns message id as plain text, with its named arguments given as
// name, value pairs: t.S("setup.saved_region", "ID", 900).
func (t *tr) S(id string, kv ...any) string { return t.localize(id, nil, args(kv)) }

// N is S for a sentence about n things: the plural form for n, which the
// message also gets as argument Count.
func (t *tr) N(id string, n int, kv ...any) string {
	a := args(kv)
	a["Count"] = n
	return t.localize(id, n, a)
}

// M translates a message another package made: its ID and arguments,
// of which those that are messages themselves (a userMessage, such as a
// map checker's node name) are translated first.
func (t *tr) M(id string, a map[string]any) string {
	data := make(map[string]any, len(a))
	for k, v := range a {
		if m, ok := v.(userMessage); ok {
			v = t.M(m.UserMessage())
		}
		data[k] = v
	}
	return t.localize(id, nil, data)
}

// text translates a sentence of the port mapping's status, whose English
// is en; one without an ID (a status made by hand) stays English.
func (t *tr) text(txt usermsg.Msg, en string) string {
	if txt.ID == "" {
		return en
	}
	return t.M(txt.ID, txt.Args)
}

// sentences translates the sentences of msgs (English → Msg) found in s,
// which may join several (a DNS check's problems), the longest first so
// that one holding another is translated whole; the rest stays English.
func (t *tr) sentences(msgs map[string]usermsg.Msg, s string) string {
	if t.tag == locales[0].tag {
		return s
	}
	ens := slices.SortedFunc(maps.Keys(msgs), func(a, b string) int { return len(b) - len(a) })
	for _, en := range ens {
		if en != "" && strings.Contains(s, en) {
			s = strings.ReplaceAll(s, en, t.M(msgs[en].UserMessage()))
		}
	}
	return s
}

// findings translates map checker findings.
func (t *tr) findings(fs []derpmap.Finding) []derpmap.Finding {
	out := make([]derpmap.Finding, len(fs))
	for i, f := range fs {
		out[i] = f
		out[i].Msg = t.M(f.ID, f.Args)
	}
	return out
}

func (t *tr) localize(id string, count any, data map[string]any) string {
	msg, err := t.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data, PluralCount: count})
	if err != nil && msg == "" {
		// Only a catalogue missing the ID gets here (the tests see to
		// it); the ID itself says what went wrong.
		return id
	}
	return msg
}

// html is S for templates: the message may hold markup, so the
// arguments are escaped and the result is trusted.
func (t *tr) html(id string, kv ...any) template.HTML {
	return template.HTML(t.localize(id, nil, escapeArgs(args(kv))))
}

// htmlN is N for templates; n is any integer.
func (t *tr) htmlN(id string, n any, kv ...any) template.HTML {
	a := escapeArgs(args(kv))
	a["Count"] = n
	return template.HTML(t.localize(id, n, a))
}

// args turns name, value pairs into a message's arguments.
func args(kv []any) map[string]any {
	a := make(map[string]any, len(kv)/2+1)
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			a[k] = kv[i+1]
		}
	}
	return a
}

// escapeArgs escapes what is not HTML already.
func escapeArgs(a map[string]any) map[string]any {
	for k, v := range a {
		switch v := v.(type) {
		case template.HTML:
		case string:
			a[k] = template.HTMLEscapeString(v)
		case fmt.Stringer:
			a[k] = template.HTMLEscapeString(v.String())
		}
	}
	return a
}

// The words of the status pages. Each switch names its keys in full, so
// that the catalogue test sees every key in use.

// backendState names a state of tailscaled (ipn.State).
func (t *tr) backendState(state string) string {
	switch state {
	case "NoState":
		return t.S("tsstate.no_state")
	case "InUseOtherUser":
		return t.S("tsstate.in_use_other_user")
	case "NeedsLogin":
		return t.S("tsstate.needs_login")
	case "NeedsMachineAuth":
		return t.S("tsstate.needs_machine_auth")
	case "Stopped":
		return t.S("tsstate.stopped")
	case "Starting":
		return t.S("tsstate.starting")
	case "Running":
		return t.S("tsstate.running")
	}
	return state
}

// certMode names a certificate mode.
func (t *tr) certMode(mode string) string {
	switch config.CertMode(mode) {
	case config.CertSelfSigned:
		return t.S("word.self_signed")
	case config.CertACMEDNS:
		return t.S("word.acme_dns")
	case config.CertManual:
		return t.S("word.manual")
	}
	return mode
}

// providerName names a DNS provider as its users know it; p is its ID
// or its English name (config.ProviderName).
func (t *tr) providerName(p string) string {
	id := p
	for _, info := range config.Providers {
		if p == info.Name {
			id = info.ID
		}
	}
	switch id {
	case config.ProviderCloudflare:
		return t.S("word.cloudflare")
	case config.ProviderTencentCloud:
		return t.S("word.dnspod")
	case config.ProviderAliDNS:
		return t.S("word.alidns")
	case config.ProviderRFC2136:
		return t.S("word.rfc2136")
	}
	return p
}

// match says whether DNS serves the line's address ("yes", "no",
// "unknown").
func (t *tr) match(m string) string {
	switch m {
	case "yes":
		return t.S("word.yes")
	case "no":
		return t.S("word.no")
	}
	return t.S("word.unknown")
}

// event names the kind of a DNS history entry.
func (t *tr) event(kind string) string {
	switch kind {
	case "change":
		return t.S("word.change")
	case "error":
		return t.S("word.error")
	case "warning":
		return t.S("word.warning")
	}
	return kind
}

// severity names a map checker finding's severity.
func (t *tr) severity(s derpmap.Severity) string {
	switch s {
	case derpmap.SevError:
		return t.S("word.error")
	case derpmap.SevWarning:
		return t.S("word.warning")
	case derpmap.SevNote:
		return t.S("word.note")
	}
	return string(s)
}

// mapFormat says how the map checker read a map.
func (t *tr) mapFormat(f string) string {
	switch f {
	case derpmap.FormatJSON:
		return t.S("check.format.json")
	case derpmap.FormatPolicy:
		return t.S("check.format.policy")
	case derpmap.FormatYAML:
		return t.S("check.format.yaml")
	}
	return f
}
