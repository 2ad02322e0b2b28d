package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestUpdateKeepsConcurrentChanges: writers that each change their own
// fields, at the same time, never undo one another. Each confirmed
// Update must be in the final document, on disk and in memory.
func TestUpdateKeepsConcurrentChanges(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(valid()); err != nil {
		t.Fatal(err)
	}
	const rounds = 20
	writers := []func(*Config, int){
		func(c *Config, i int) { c.Relay.DERPPort = 20000 + i },
		func(c *Config, i int) { c.Region.ID = 900 + i },
		func(c *Config, i int) { c.Region.Name = fmt.Sprintf("Home %d", i) },
		func(c *Config, i int) { c.Tailnet.ControlURL = fmt.Sprintf("https://hs%d.example.com", i) },
		func(c *Config, i int) { c.Relay.MeshWith = append(c.Relay.MeshWith, fmt.Sprintf("m%d.example.com", i)) },
	}
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Go(func() {
			for i := range rounds {
				if err := s.Update(func(c *Config) error { w(c, i); return nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	want := valid()
	for _, w := range writers[:4] {
		w(&want, rounds-1)
	}
	for i := range rounds {
		writers[4](&want, i)
	}
	onDisk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string]Config{"in memory": s.Config(), "on disk": onDisk} {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after concurrent updates, %s (-want +got):\n%s", what, diff)
		}
	}
}

// TestUpdateRefusals: an error from fn, or a result that does not
// validate, leaves the file and the running config as they were and
// notifies nobody.
func TestUpdateRefusals(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	good := valid()
	good.Relay.MeshWith = []string{"derp2.example.com"}
	if err := s.Save(good); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, FileName))
	changes, stop := s.Watch()
	defer stop()
	gen := s.Generation()
	errMine := errors.New("changed my mind")
	for _, tt := range []struct {
		name string
		fn   func(*Config) error
		want func(error) bool
	}{
		{"fn fails", func(c *Config) error {
			c.Region.ID = 901
			c.Relay.MeshWith[0] = "scribbled.example.com" // into its copy only
			return errMine
		}, func(err error) bool { return errors.Is(err, errMine) }},
		{"invalid result", func(c *Config) error {
			c.Region.ID = 5
			return nil
		}, func(err error) bool { var es Errors; return errors.As(err, &es) && len(es.For("region.id")) == 1 }},
	} {
		err := s.Update(tt.fn)
		if !tt.want(err) {
			t.Errorf("%s: Update: got %v", tt.name, err)
		}
	}
	after, _ := os.ReadFile(filepath.Join(dir, FileName))
	if string(before) != string(after) {
		t.Errorf("refused updates changed the file:\n%s", after)
	}
	if diff := cmp.Diff(good, s.Config()); diff != "" {
		t.Errorf("refused updates changed the running config (-want +got):\n%s", diff)
	}
	if len(changes) != 0 || s.Generation() != gen {
		t.Errorf("refused updates told watchers (%d waiting) or moved the generation (%d, was %d)", len(changes), s.Generation(), gen)
	}
}

func TestNormalizeHostname(t *testing.T) {
	for in, want := range map[string]string{
		"derp.example.com":     "derp.example.com",
		" Derp.Example.COM. ":  "derp.example.com",
		"derp.example.com.":    "derp.example.com",
		"2001:DB8::0:1":        "2001:db8::1",
		"[2001:db8::1]":        "2001:db8::1",
		"198.51.100.7":         "198.51.100.7",
		"":                     "",
		"derp example.com":     "derp example.com", // left for Validate to explain
		"Bad_Name.example.com": "bad_name.example.com",
	} {
		if got := NormalizeHostname(in); got != want {
			t.Errorf("NormalizeHostname(%q): got %q, want %q", in, got, want)
		}
	}
}
