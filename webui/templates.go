package webui

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
)

// pages are the templates, each rendered inside templates/layout.html.
var pages = []string{"status", "setup", "derpmap", "login", "message"}

// partials are the templates every page may use.
var partials = []string{"templates/layout.html", "templates/forward.html", "templates/peerrelay.html"}

// parseTemplates parses every page once per language, at start, so a
// broken template fails New rather than a request.
func (s *Server) parseTemplates() error {
	for _, l := range s.langs {
		funcs := s.funcs(l.tr)
		l.tmpl = map[string]*template.Template{}
		for _, p := range pages {
			t, err := template.New(p).Funcs(funcs).ParseFS(templateFS, append(partials, "templates/"+p+".html")...)
			if err != nil {
				return fmt.Errorf("webui: parsing template %s: %w", p, err)
			}
			l.tmpl[p] = t
		}
	}
	return nil
}

// funcs are the template functions of one language.
func (s *Server) funcs(t *tr) template.FuncMap {
	return template.FuncMap{
		"t":     t.html,
		"tn":    t.htmlN,
		"bytes": humanBytes,
		"ago":   func(when time.Time) string { return ago(t, when, s.o.Now()) },
		"until": func(when time.Time) string { return until(t, when, s.o.Now()) },
		"date": func(when time.Time) string {
			if when.IsZero() {
				return t.S("time.none")
			}
			return when.UTC().Format("2006-01-02 15:04 UTC")
		},
		"join":  strings.Join,
		"ints":  joinInts,
		"dur":   func(d config.Duration) string { return time.Duration(d).String() },
		"errs":  func(m map[string][]string, field string) []string { return m[field] },
		"has":   func(m map[string]bool, k string) bool { return m[k] },
		"state": t.backendState,
		// sentences translates what a service said in English (its
		// status's Msgs), e.g. a relay's certificate error.
		"sentences": t.sentences,
		"certmode":  t.certMode,
		"provider":  t.providerName,
		"match":     t.match,
		"event":     t.event,
		"severity":  t.severity,
		"format":    t.mapFormat,
		// flashFor picks the messages for one section of a page.
		"flashFor": func(fs []flashMsg, anchor string) []string {
			var out []string
			for _, f := range fs {
				if f.Anchor == anchor {
					out = append(out, f.Msg)
				}
			}
			return out
		},
	}
}

func joinInts(ns []int) string {
	ss := make([]string, len(ns))
	for i, n := range ns {
		ss[i] = strconv.Itoa(n)
	}
	return strings.Join(ss, ", ")
}

// humanBytes formats a byte count for people: "12.3 MB".
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}

// ago says how long ago when was: "3 min ago", or "never".
func ago(t *tr, when, now time.Time) string {
	if when.IsZero() {
		return t.S("time.never")
	}
	d := now.Sub(when)
	switch {
	case d < 0:
		return t.S("time.in", "D", roughly(t, -d))
	case d < 5*time.Second:
		return t.S("time.just_now")
	}
	return t.S("time.ago", "D", roughly(t, d))
}

// until says how far when is: "in 89 days", or "expired 2 days ago".
func until(t *tr, when, now time.Time) string {
	if when.IsZero() {
		return t.S("time.unknown")
	}
	if d := when.Sub(now); d >= 0 {
		return t.S("time.in", "D", roughly(t, d))
	}
	return t.S("time.expired", "D", roughly(t, now.Sub(when)))
}

func roughly(t *tr, d time.Duration) string {
	switch {
	case d < time.Minute:
		return t.S("time.seconds", "N", int(d.Seconds()))
	case d < time.Hour:
		return t.S("time.minutes", "N", int(d.Minutes()))
	case d < 48*time.Hour:
		return t.S("time.hours", "N", int(d.Hours()))
	}
	return t.S("time.days", "N", int(d.Hours()/24))
}
