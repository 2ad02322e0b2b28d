package relay

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSelfSignedKeepsOnlyTheCurrentPair: trying names during setup leaves
// one self-signed pair behind, the current one, and touches neither the
// manual certificates next to it nor the current pair's key.
func TestSelfSignedKeepsOnlyTheCurrentPair(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for _, h := range []string{"first.example.com", "second.example.com", "derp.example.com"} {
		if _, err := LoadOrCreateSelfSigned(dir, h, now); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"derp.example.com.crt", "derp.example.com.key", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("kept"), 0600); err != nil {
			t.Fatal(err)
		}
	}
	first, err := LoadOrCreateSelfSigned(dir, "derp.example.com", now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateSelfSigned(dir, "derp.example.com", now)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Leaf.Raw, again.Leaf.Raw) {
		t.Error("the current self-signed certificate changed (its pin would change)")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	want := []string{"derp.example.com.crt", "derp.example.com.key", "notes.txt", "self-signed-derp.example.com.crt", "self-signed-derp.example.com.key"}
	if !slices.Equal(got, want) {
		t.Errorf("files in the certificate directory: got %q, want %q", got, want)
	}
}
