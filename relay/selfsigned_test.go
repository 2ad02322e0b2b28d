package relay

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// loggedLines collects what a function logs.
type loggedLines []string

func (l *loggedLines) logf(format string, args ...any) { *l = append(*l, fmt.Sprintf(format, args...)) }

// TestSelfSignedPairIsOneUnit: the pair lives in one file written
// atomically, so no crash can leave a key without its certificate; a
// second load returns the same certificate, so the map's pin holds.
func TestSelfSignedPairIsOneUnit(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	var logs loggedLines
	c1, err := LoadOrCreateSelfSigned(dir, "derp.example.com", now, logs.logf)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := "self-signed-derp.example.com.pem"; len(names) != 1 || names[0] != want {
		t.Errorf("files after the first load: %q, want just %q", names, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, "self-signed-derp.example.com.pem")); err != nil || fi.Mode().Perm() != 0600 {
		t.Errorf("the pair's file: %v, %v; want mode 0600 (it holds the key)", fi.Mode(), err)
	}
	c2, err := LoadOrCreateSelfSigned(dir, "derp.example.com", now.Add(time.Hour), logs.logf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c1.Certificate[0], c2.Certificate[0]) {
		t.Error("second load made a new certificate; the pin in the user's map would break")
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "made a new self-signed certificate") {
		t.Errorf("log: %q, want one line for the certificate made", logs)
	}
}

// TestSelfSignedRecovers: what an older version (key first, then
// certificate, in two files) left after a crash between the two writes,
// and a pair file cut short, are replaced by a new pair, said so in the
// log; a good pair of the older version is adopted as it is (same pin).
func TestSelfSignedRecovers(t *testing.T) {
	const host = "derp.example.com"
	now := time.Now()
	legacy := func(dir string) (crt, key string) {
		return filepath.Join(dir, "self-signed-"+host+".crt"), filepath.Join(dir, "self-signed-"+host+".key")
	}
	writeLegacy := func(t *testing.T, dir string, crtPEM, keyPEM []byte) {
		crt, key := legacy(dir)
		if err := os.WriteFile(key, keyPEM, 0600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crt, crtPEM, 0644); err != nil {
			t.Fatal(err)
		}
	}
	oldCrt, oldKey, err := NewSelfSignedPEM(host, now)
	if err != nil {
		t.Fatal(err)
	}
	_, newKey, err := NewSelfSignedPEM(host, now)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a good pair of the older version is adopted", func(t *testing.T) {
		dir := t.TempDir()
		writeLegacy(t, dir, oldCrt, oldKey)
		var logs loggedLines
		c, err := LoadOrCreateSelfSigned(dir, host, now, logs.logf)
		if err != nil {
			t.Fatal(err)
		}
		if want := leafDER(t, oldCrt); !bytes.Equal(c.Certificate[0], want) {
			t.Error("the stored pair was replaced; the pin in the user's map would break")
		}
		crt, key := legacy(dir)
		if fileExists(crt) || fileExists(key) || !fileExists(filepath.Join(dir, "self-signed-"+host+".pem")) {
			t.Error("the older pair was not moved into one file")
		}
	})
	t.Run("a key without its certificate", func(t *testing.T) {
		dir := t.TempDir()
		writeLegacy(t, dir, oldCrt, newKey) // the crash: new key, old certificate
		var logs loggedLines
		c, err := LoadOrCreateSelfSigned(dir, host, now, logs.logf)
		if err != nil {
			t.Fatalf("a mismatched pair: %v, want a new pair", err)
		}
		if bytes.Equal(c.Certificate[0], leafDER(t, oldCrt)) {
			t.Error("kept the certificate whose key is gone")
		}
		if got := strings.Join(logs, "\n"); !strings.Contains(got, "could not be used") || !strings.Contains(got, "paste the new DERP map") {
			t.Errorf("log: %q, want why a new certificate was made and what to do", got)
		}
		c2, err := LoadOrCreateSelfSigned(dir, host, now, nil)
		if err != nil || !bytes.Equal(c.Certificate[0], c2.Certificate[0]) {
			t.Errorf("the new pair does not load again: %v", err)
		}
	})
	t.Run("a pair file cut short", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := LoadOrCreateSelfSigned(dir, host, now, nil); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "self-signed-"+host+".pem")
		b, _ := os.ReadFile(p)
		if err := os.WriteFile(p, b[:len(b)/2], 0600); err != nil {
			t.Fatal(err)
		}
		var logs loggedLines
		if _, err := LoadOrCreateSelfSigned(dir, host, now, logs.logf); err != nil {
			t.Fatalf("a damaged pair file: %v, want a new pair", err)
		}
		if !strings.Contains(strings.Join(logs, "\n"), "could not be used") {
			t.Errorf("log: %q", logs)
		}
		aside, _ := filepath.Glob(p + ".broken-*")
		if len(aside) != 1 {
			t.Errorf("the damaged file was not kept aside: %q", aside)
		}
	})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestSelfSignedKeepsOnlyTheCurrentPair: trying names during setup leaves
// one self-signed pair behind, the current one, and touches neither the
// manual certificates next to it nor the current pair's key.
func TestSelfSignedKeepsOnlyTheCurrentPair(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for _, h := range []string{"first.example.com", "second.example.com", "derp.example.com"} {
		if _, err := LoadOrCreateSelfSigned(dir, h, now, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"derp.example.com.crt", "derp.example.com.key", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("kept"), 0600); err != nil {
			t.Fatal(err)
		}
	}
	first, err := LoadOrCreateSelfSigned(dir, "derp.example.com", now, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateSelfSigned(dir, "derp.example.com", now, nil)
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
	want := []string{"derp.example.com.crt", "derp.example.com.key", "notes.txt", "self-signed-derp.example.com.pem"}
	if !slices.Equal(got, want) {
		t.Errorf("files in the certificate directory: got %q, want %q", got, want)
	}
}

// TestSelfSignedWithoutClock follows a board without a real-time clock:
// its first certificate waits for a set clock, and after a power cut (the
// clock back in 1970) the stored one still serves, unchanged, because it
// is the one the map pins.
func TestSelfSignedWithoutClock(t *testing.T) {
	dir := t.TempDir()
	unset := time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)
	if _, err := LoadOrCreateSelfSigned(dir, "derp.example.com", unset, nil); err == nil || !strings.Contains(err.Error(), "clock is not set") {
		t.Fatalf("first certificate with the clock unset: got %v, want an error saying the clock is not set", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("with the clock unset, files were written: %v", entries)
	}
	now := time.Now()
	made, err := LoadOrCreateSelfSigned(dir, "derp.example.com", now, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		now  time.Time
		same bool
	}{
		{"clock unset after a power cut", unset, true},
		{"the zero time", time.Time{}, true},
		{"clock set again", now.Add(time.Hour), true},
		{"expired", now.Add(SelfSignedLifetime + time.Hour), false},
	} {
		got, err := LoadOrCreateSelfSigned(dir, "derp.example.com", tc.now, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if same := bytes.Equal(got.Certificate[0], made.Certificate[0]); same != tc.same {
			t.Errorf("%s: got the stored certificate: %v, want %v", tc.name, same, tc.same)
		}
	}
}
