package webui

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/homederp/homederp/appliance/config"
)

// pages are the templates, each rendered inside templates/layout.html.
var pages = []string{"status", "setup", "derpmap", "login", "message"}

// parseTemplates parses every page once, at start, so a broken template
// fails New rather than a request.
func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{
		"bytes": humanBytes,
		"ago":   func(t time.Time) string { return ago(t, s.o.Now()) },
		"until": func(t time.Time) string { return until(t, s.o.Now()) },
		"date": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"join": strings.Join,
		"dur":  func(d config.Duration) string { return time.Duration(d).String() },
		"errs": func(m map[string][]string, field string) []string { return m[field] },
		"has":  func(m map[string]bool, k string) bool { return m[k] },
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
	s.tmpl = map[string]*template.Template{}
	for _, p := range pages {
		t, err := template.New(p).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/peerrelay.html", "templates/"+p+".html")
		if err != nil {
			return fmt.Errorf("webui: parsing template %s: %w", p, err)
		}
		s.tmpl[p] = t
	}
	return nil
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

// ago says how long ago t was: "3 min ago", or "never".
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + roughly(-d)
	case d < 5*time.Second:
		return "just now"
	}
	return roughly(d) + " ago"
}

// until says how far t is: "in 89 days", or "expired 2 days ago".
func until(t, now time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	if d := t.Sub(now); d >= 0 {
		return "in " + roughly(d)
	}
	return "expired " + roughly(now.Sub(t)) + " ago"
}

func roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
