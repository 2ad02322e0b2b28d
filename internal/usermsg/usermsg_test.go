package usermsg

import (
	"errors"
	"fmt"
	"os"
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

func TestWrapf(t *testing.T) {
	cause := fmt.Errorf("dial tcp: %w", os.ErrDeadlineExceeded)
	err := Wrapf(cause, "x.connect", "connecting to {{.Server}}: {{.Err}}", map[string]any{"Server": "ns1:53"})
	if got, want := err.Error(), "connecting to ns1:53: dial tcp: i/o timeout"; got != want {
		t.Errorf("Error: got %q, want %q", got, want)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("errors.Is(%v, os.ErrDeadlineExceeded): got false, want true", err)
	}
	if id, args := err.UserMessage(); id != "x.connect" || args["Err"] != cause.Error() || args["Server"] != "ns1:53" {
		t.Errorf("UserMessage: got %q %v, want x.connect with Err and Server", id, args)
	}
}
