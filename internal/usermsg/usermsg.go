// Package usermsg carries sentences for people from the packages that
// know what went wrong to the web UI, which speaks the person's language.
// A sentence is its English text, which the package keeps next to its
// logic and which logs, JSON and error strings use as they are, and a
// stable ID with named arguments, under which the web UI's catalogues
// (webui/locales) translate it. An argument that is a sentence itself (it
// has a UserMessage method) is translated with it.
//
// It imports only the standard library, so that leaf packages such as
// appliance/config can use it.
package usermsg

import (
	"strings"
	"text/template"
)

// Msg is a sentence's ID and arguments, e.g. {"router.no_answer",
// {"Ports": "tcp 12345"}}. The zero Msg is no sentence.
type Msg struct {
	ID   string
	Args map[string]any
}

// UserMessage returns the ID and arguments.
func (m Msg) UserMessage() (id string, args map[string]any) { return m.ID, m.Args }

// Say makes a sentence: text is its English, a text/template over args in
// the catalogues' syntax ({{.Port}}, {{printf "%q" .Host}}), which
// webui/locales/en.toml repeats verbatim under id (the web UI's catalogue
// test checks that). It returns the English and the Msg.
func Say(id, text string, args map[string]any) (string, Msg) {
	var b strings.Builder
	if err := template.Must(template.New(id).Parse(text)).Execute(&b, args); err != nil {
		b.WriteString(text) // the catalogue test would have failed; the text still says what is wrong
	}
	return b.String(), Msg{ID: id, Args: args}
}

// Error is an error whose text is a sentence.
type Error struct {
	Msg
	text string
	err  error // the cause, for errors.Is and errors.As
}

func (e *Error) Error() string { return e.text }

// Unwrap returns the cause given to Wrapf, or nil.
func (e *Error) Unwrap() error { return e.err }

// Errorf is Say for an error.
func Errorf(id, text string, args map[string]any) *Error {
	s, m := Say(id, text, args)
	return &Error{Msg: m, text: s}
}

// Wrapf is Errorf for a sentence that explains err: the sentence's
// argument "Err" is err, translated with it where err is a sentence
// itself and otherwise its own text (a library's, which stays as it is
// in every language); errors.Is and errors.As see err through it.
func Wrapf(err error, id, text string, args map[string]any) *Error {
	a := make(map[string]any, len(args)+1)
	for k, v := range args {
		a[k] = v
	}
	var cause any = err.Error()
	if _, ok := err.(interface {
		UserMessage() (string, map[string]any)
	}); ok {
		cause = err
	}
	a["Err"] = cause
	e := Errorf(id, text, a)
	e.err = err
	return e
}
