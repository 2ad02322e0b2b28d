package ddnstest

import (
	"slices"
	"testing"
)

// TestRecords: the store finds, copies, deletes and serves records by
// domain, name, type and line, and tells a duplicate only on the same
// line.
func TestRecords(t *testing.T) {
	rs := Records{
		{ID: "1", Domain: "example.com", Name: "derp", Type: "A", Value: "203.0.113.9", TTL: 600, Line: "default", Status: "ENABLE"},
		{ID: "2", Domain: "example.com", Name: "derp", Type: "A", Value: "198.51.100.7", TTL: 600, Line: "telecom", Status: "ENABLE"},
		{ID: "3", Domain: "example.com", Name: "@", Type: "TXT", Value: "v=spf1 -all", TTL: 600, Line: "default", Status: "ENABLE"},
		{ID: "4", Domain: "example.com", Name: "old", Type: "A", Value: "192.0.2.4", TTL: 600, Line: "default", Status: "DISABLE"},
		{ID: "5", Domain: "example.org", Name: "derp", Type: "A", Value: "203.0.113.9", TTL: 600, Line: "default", Status: "ENABLE"},
	}
	if got, want := OnLine(rs.Copies("example.com", "DERP", "A"), "telecom"), []string{"198.51.100.7 ttl 600"}; !slices.Equal(got, want) {
		t.Errorf("Copies(derp A) on telecom: got %q, want %q", got, want)
	}
	if got := len(rs.Copies("example.com", "derp", "")); got != 2 {
		t.Errorf("Copies(derp, any type): got %d records, want 2", got)
	}
	if r := rs.Find("3"); r == nil || r.Name != "@" {
		t.Errorf("Find(3): got %+v", r)
	}
	for _, tt := range []struct {
		r    Record
		want bool
	}{
		{Record{Domain: "example.com", Name: "derp", Type: "A", Value: "203.0.113.9", Line: "default"}, true},
		{Record{ID: "1", Domain: "example.com", Name: "derp", Type: "A", Value: "203.0.113.9", Line: "default"}, false}, // itself
		{Record{Domain: "example.com", Name: "derp", Type: "A", Value: "203.0.113.9", Line: "unicom"}, false},
		{Record{Domain: "example.com", Name: "derp", Type: "A", Value: "203.0.113.10", Line: "default"}, false},
	} {
		if got := rs.Duplicate(&tt.r); got != tt.want {
			t.Errorf("Duplicate(%+v): got %v, want %v", tt.r, got, tt.want)
		}
	}
	want := []AuthRR{{Name: "derp.example.com", Type: "A", Value: "203.0.113.9", TTL: 600}, {Name: "example.com", Type: "TXT", Value: "v=spf1 -all", TTL: 600}}
	if got := rs.Served("example.com", "default"); !slices.Equal(got, want) {
		t.Errorf("Served: got %+v, want %+v (the default line's enabled records)", got, want)
	}
	if !rs.Delete("2") || rs.Delete("2") || rs.Find("2") != nil || len(rs) != 4 {
		t.Errorf("Delete(2) twice: want true, then false, and 4 records left; got %d", len(rs))
	}
}
