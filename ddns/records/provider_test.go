package records

import (
	"errors"
	"testing"
)

// zoneErr is a provider's API error that names its zone.
type zoneErr struct{ zone string }

func (e *zoneErr) Error() string        { return "refused for " + e.zone }
func (e *zoneErr) NameZone(zone string) { e.zone = zone }

// TestExplain: the API error learns its zone, and the message says what
// was being done.
func TestExplain(t *testing.T) {
	err := Explain(&zoneErr{}, "example.com", "listing the %s records of %s", "A", "derp")
	if got, want := err.Error(), "listing the A records of derp: refused for example.com"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var ze *zoneErr
	if !errors.As(err, &ze) {
		t.Errorf("got %v, want the API error kept in the chain", err)
	}
	if got, want := Explain(errors.New("no API error"), "example.com", "deleting"), "deleting: no API error"; got.Error() != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
