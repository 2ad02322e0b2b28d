package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse feeds config.json documents to Parse and Validate, as Load
// does at boot. Whatever the bytes, they must not panic; a document that
// parses must survive Marshal and Parse unchanged (so a save never alters
// what the user set), and Validate must judge the copy as it judged the
// original. A document that validates must also go through a Store: saved
// and loaded back, it is the same configuration.
func FuzzParse(f *testing.F) {
	for _, c := range []Config{Default(), valid()} {
		b, err := Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Parse(doc)
		if err != nil {
			return
		}
		verr := c.Validate()
		out, err := Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of a parsed document: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(c)): %v\n%s", err, out)
		}
		if diff := cmp.Diff(c, c2); diff != "" {
			t.Fatalf("Parse(Marshal(c)) differs (-first +second):\n%s", diff)
		}
		if verr2 := c2.Validate(); (verr == nil) != (verr2 == nil) || verr != nil && verr.Error() != verr2.Error() {
			t.Fatalf("Validate: %v on the document, %v on its round trip", verr, verr2)
		}
		if verr != nil {
			return
		}
		dir := t.TempDir()
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Save(c); err != nil {
			t.Fatalf("Save of a valid configuration: %v", err)
		}
		loaded, err := Load(dir)
		if err != nil {
			t.Fatalf("Load after Save: %v", err)
		}
		if diff := cmp.Diff(c, loaded); diff != "" {
			t.Fatalf("Load after Save differs (-saved +loaded):\n%s", diff)
		}
	})
}
