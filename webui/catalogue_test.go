package webui

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template/parse"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// The catalogues must be complete and consistent: every key in both
// languages, every key in use and every key used in the catalogues, the
// same arguments and markup in each language, and the English of the
// messages other packages make (config validation, the map checker)
// repeated verbatim.

// msgPackages are the directories, relative to this one, whose Go code
// names catalogue keys.
var msgPackages = []string{".", "../appliance/config", "../appliance/derpmap", "../ddns/apiclient", "../ddns/records",
	"../ddns/tencentcloud", "../ddns/alidns", "../ddns/cloudflare", "../ddns/rfc2136", "../ddns/ipclass", "../relay/portmap", "../relay/spec", "../relay", "../relay/acmedns", "../appliance", "../ddns", "../ddns/detect"}

// keyRx is what a catalogue key looks like in Go code: one of the
// catalogues' top-level tables, then dotted lowercase words. Config paths
// such as "relay.derp_port" start with other words.
var keyRx = regexp.MustCompile(`^(layout|nav|login|message|http|time|setup|forward|status|word|tsstate|map|peerrelay|flash|tailscaled|warn|reach|setting|check|provider|router|reason|spec|detect|dns|relaystate)\.[a-z0-9_.]+$`)

// catalogue reads one language's messages by ID.
func catalogue(t *testing.T, tag string) map[string]*i18n.Message {
	t.Helper()
	b, err := localeFS.ReadFile("locales/" + tag + ".toml")
	if err != nil {
		t.Fatal(err)
	}
	bundle := i18n.NewBundle(language.English)
	bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	f, err := bundle.ParseMessageFileBytes(b, tag+".toml")
	if err != nil {
		t.Fatalf("parsing the %s catalogue: %v", tag, err)
	}
	out := map[string]*i18n.Message{}
	for _, m := range f.Messages {
		if out[m.ID] != nil {
			t.Errorf("%s: %s twice", tag, m.ID)
		}
		out[m.ID] = m
	}
	return out
}

// usedKeys finds the keys the templates and the Go code name, and says
// which come from Go (plain text only).
func usedKeys(t *testing.T) (used map[string]bool, fromGo map[string]bool) {
	used, fromGo = map[string]bool{}, map[string]bool{}
	funcs := s0funcs()
	builtins := map[string]any{}
	for _, name := range []string{"call", "index", "eq", "ne", "gt", "len", "not", "or", "and", "printf"} {
		builtins[name] = fmt.Sprint
	}
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := templateFS.ReadFile(path)
		if err != nil {
			return err
		}
		trees, err := parse.Parse(path, string(b), "{{", "}}", funcs, builtins)
		if err != nil {
			return err
		}
		for _, tr := range trees {
			walkTemplate(tr.Root, func(c *parse.CommandNode) {
				if len(c.Args) < 2 {
					return
				}
				if id, ok := c.Args[0].(*parse.IdentifierNode); ok && (id.Ident == "t" || id.Ident == "tn") {
					if s, ok := c.Args[1].(*parse.StringNode); ok {
						used[s.Text] = true
					} else {
						t.Errorf("%s: %s with a key that is not a string literal: %s", path, id.Ident, c)
					}
				}
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	eachGoNode(t, msgPackages, func(n ast.Node) {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil && keyRx.MatchString(s) {
				used[s], fromGo[s] = true, true
			}
		}
	})
	return used, fromGo
}

// eachGoNode calls f with every node of the Go code (tests excepted) in
// dirs.
func eachGoNode(t *testing.T, dirs []string, f func(ast.Node)) {
	t.Helper()
	fset := token.NewFileSet()
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				f(n)
				return true
			})
		}
	}
}

func walkTemplate(n parse.Node, f func(*parse.CommandNode)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				walkTemplate(c, f)
			}
		}
	case *parse.ActionNode:
		walkTemplate(n.Pipe, f)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				walkTemplate(c, f)
			}
		}
	case *parse.CommandNode:
		f(n)
		for _, a := range n.Args {
			walkTemplate(a, f)
		}
	case *parse.IfNode:
		walkTemplate(n.Pipe, f)
		walkTemplate(n.List, f)
		walkTemplate(n.ElseList, f)
	case *parse.RangeNode:
		walkTemplate(n.Pipe, f)
		walkTemplate(n.List, f)
		walkTemplate(n.ElseList, f)
	case *parse.WithNode:
		walkTemplate(n.Pipe, f)
		walkTemplate(n.List, f)
		walkTemplate(n.ElseList, f)
	case *parse.TemplateNode:
		walkTemplate(n.Pipe, f)
	}
}

// s0funcs are the template functions' names.
func s0funcs() map[string]any {
	s := &Server{o: Options{}}
	m := map[string]any{}
	for k, v := range s.funcs(&tr{}) {
		m[k] = v
	}
	return m
}

var (
	argRx = regexp.MustCompile(`\.[A-Z][A-Za-z]*`)
	tagRx = regexp.MustCompile(`</?(a|b|code|em|strong)\b[^>]*>`)
)

// forms are a message's texts, its plural forms included.
func forms(m *i18n.Message) []string {
	var out []string
	for _, s := range []string{m.Zero, m.One, m.Two, m.Few, m.Many, m.Other} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func sortedMatches(rx *regexp.Regexp, s string) []string {
	ms := rx.FindAllString(s, -1)
	slices.Sort(ms)
	return slices.Compact(ms)
}

func TestCatalogues(t *testing.T) {
	en, zh := catalogue(t, "en"), catalogue(t, "zh-CN")
	used, fromGo := usedKeys(t)
	for _, id := range slices.Sorted(maps.Keys(en)) {
		if zh[id] == nil {
			t.Errorf("zh-CN.toml lacks %s (en: %q)", id, en[id].Other)
		}
		if !used[id] {
			t.Errorf("en.toml has %s, which no template or code uses", id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(zh)) {
		if en[id] == nil {
			t.Errorf("zh-CN.toml has %s, which en.toml lacks", id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(used)) {
		if en[id] == nil {
			t.Errorf("%s is used but in no catalogue", id)
		}
	}
	for id, e := range en {
		z := zh[id]
		if z == nil {
			continue
		}
		if e.Other == "" || z.Other == "" {
			t.Errorf("%s: no \"other\" form (en %q, zh-CN %q)", id, e.Other, z.Other)
		}
		// Every form of both languages has the same arguments and markup
		// (a plural form may leave the count out).
		want, wantTags := sortedMatches(argRx, e.Other), sortedMatches(tagRx, e.Other)
		for _, f := range append(forms(e), forms(z)...) {
			if got := sortedMatches(argRx, f); !slices.Equal(got, want) && !slices.Equal(append(got, ".Count"), want) {
				t.Errorf("%s: %q has arguments %v, want %v", id, f, got, want)
			}
			if got := sortedMatches(tagRx, f); !slices.Equal(got, wantTags) {
				t.Errorf("%s: %q has markup %v, want %v", id, f, got, wantTags)
			}
		}
		if fromGo[id] && len(wantTags) > 0 {
			t.Errorf("%s is used from Go, where markup shows as text: %q", id, e.Other)
		}
	}
}

// english is the English translator, for tests of functions that take one.
func english(t *testing.T) *tr {
	t.Helper()
	langs, _, _, err := loadLocales()
	if err != nil {
		t.Fatal(err)
	}
	return langs[0].tr
}

// englishInCode finds the English texts that code outside the web UI
// gives next to a key (usermsg.Say and the helpers around it): a call
// whose arguments are the key and then the text, a literal or a sum of
// them, and an entry of a map literal from a key constant of the same
// file to the text (a provider's table of messages).
func englishInCode(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(id, text string) {
		if prev, dup := out[id]; dup && prev != text {
			t.Errorf("%s: two texts in code: %q and %q", id, prev, text)
		}
		out[id] = text
	}
	dirs := []string{"../appliance/config", "../appliance/derpmap", "../relay/portmap", "../relay/spec", "../relay", "../relay/acmedns", "../appliance", "../ddns", "../ddns/detect",
		"../ddns/tencentcloud", "../ddns/alidns", "../ddns/cloudflare", "../ddns/rfc2136"}
	var consts map[string]string // the file's string constants, by name
	eachGoNode(t, dirs, func(n ast.Node) {
		switch n := n.(type) {
		case *ast.File:
			consts = fileConsts(n)
		case *ast.KeyValueExpr:
			k, ok := n.Key.(*ast.Ident)
			if !ok || !keyRx.MatchString(consts[k.Name]) {
				return
			}
			if text, ok := stringConst(n.Value); ok {
				add(consts[k.Name], text)
			}
		case *ast.CallExpr:
			for i := 0; i+1 < len(n.Args); i++ {
				id, ok := stringConst(n.Args[i])
				if !ok || !keyRx.MatchString(id) {
					continue
				}
				if text, ok := stringConst(n.Args[i+1]); ok {
					add(id, text)
				}
			}
		}
	})
	return out
}

// fileConsts are f's constants whose values are string literals.
func fileConsts(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if s, ok := stringConst(vs.Values[i]); ok {
						out[name.Name] = s
					}
				}
			}
		}
	}
	return out
}

// stringConst evaluates a string literal or a sum of them.
func stringConst(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok1 := stringConst(e.X)
		b, ok2 := stringConst(e.Y)
		return a + b, ok1 && ok2
	}
	return "", false
}

// TestCatalogueRepeatsCode: the English catalogue says what the code of
// config and derpmap says in English, word for word.
func TestCatalogueRepeatsCode(t *testing.T) {
	en := catalogue(t, "en")
	code := englishInCode(t)
	if len(code) < 80 {
		t.Fatalf("found %d texts in config and derpmap; the scan is broken", len(code))
	}
	if _, ok := code["provider.alidns.key_id"]; !ok {
		t.Fatal("the scan misses the providers' tables of messages (provider.alidns.key_id)")
	}
	for _, id := range slices.Sorted(maps.Keys(code)) {
		switch m := en[id]; {
		case m == nil:
			t.Errorf("en.toml lacks %s = %q", id, code[id])
		case m.Other != code[id]:
			t.Errorf("%s: en.toml says %q, the code %q", id, m.Other, code[id])
		}
	}
}
