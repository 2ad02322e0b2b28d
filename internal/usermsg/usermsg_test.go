package usermsg

import (
	"errors"
	"fmt"
	"testing"
)

func TestSay(t *testing.T) {
	inner := Errorf("spec.port", `{{printf "%q" .Port}} is not a port number (1–65535)`, map[string]any{"Port": "99999"})
	for _, tt := range []struct {
		text string
		args map[string]any
		want string
	}{
		{"no arguments", nil, "no arguments"},
		{"{{.N}} is {{.Word}}", map[string]any{"N": 3, "Word": "odd"}, "3 is odd"},
		// A sentence inside another prints its English.
		{`{{printf "%q" .Mesh}}: {{.Err}}`, map[string]any{"Mesh": "a:b", "Err": inner}, `"a:b": "99999" is not a port number (1–65535)`},
		// Text, not HTML: nothing is escaped.
		{`<{{.S}}> & "{{.S}}"`, map[string]any{"S": `<&>`}, `<<&>> & "<&>"`},
	} {
		got, m := Say("x.id", tt.text, tt.args)
		if got != tt.want || m.ID != "x.id" {
			t.Errorf("Say(%q, %v): got %q, %q; want %q, x.id", tt.text, tt.args, got, m.ID, tt.want)
		}
	}
	wrapped := fmt.Errorf("checking: %w", inner)
	var e *Error
	if !errors.As(wrapped, &e) {
		t.Fatal("errors.As found no *Error")
	}
	if id, args := e.UserMessage(); id != "spec.port" || args["Port"] != "99999" {
		t.Errorf("UserMessage: got %q %v", id, args)
	}
	if got, want := wrapped.Error(), `checking: "99999" is not a port number (1–65535)`; got != want {
		t.Errorf("Error: got %q, want %q", got, want)
	}
}
