package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/homederp/homederp/internal/statefile"
)

// FileName is the config document's name inside the state directory.
const FileName = "config.json"

// Store holds the configuration in a directory (on the box
// /perm/homederp). It is safe for concurrent use.
type Store struct {
	dir string
	now func() time.Time

	mu       sync.Mutex
	cur      Config
	loadErr  error  // why config.json could not be used, or nil
	gen      uint64 // counts changes: see Current
	watchers map[chan struct{}]bool
}

// Open reads dir/config.json, creating dir (0700) if needed. A missing
// file means defaults. A file that cannot be parsed is not an error of
// Open: the Store then holds defaults in memory, LoadError reports the
// problem, and the broken file stays on disk untouched until the user saves
// a new configuration (which moves it aside rather than deleting it).
// Open fails only when dir itself is unusable.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	s := &Store{dir: dir, now: time.Now, gen: 1, watchers: map[chan struct{}]bool{}}
	if err := statefile.RemoveTemp(filepath.Join(dir, FileName)); err != nil {
		return nil, err
	}
	c, err := Load(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.cur = Default()
	case err != nil:
		var pe *ParseError
		if !errors.As(err, &pe) {
			return nil, err
		}
		s.cur = Default()
		s.loadErr = err
	default:
		s.cur = c
	}
	return s, nil
}

// ParseError says config.json exists but is not a valid document.
type ParseError struct {
	Path string
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s is broken and was left as it is (running with defaults until a new configuration is saved): %v", e.Path, e.Err)
}
func (e *ParseError) Unwrap() error { return e.Err }

// Load reads and validates dir/config.json. A missing file returns an error
// wrapping fs.ErrNotExist; a file that does not parse or validate returns a
// *ParseError.
func Load(dir string) (Config, error) {
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(b)
	if err == nil {
		// A stored document must satisfy today's rules too; an
		// invalid one is reported, not half-applied.
		err = c.Validate()
	}
	if err != nil {
		return Config{}, &ParseError{Path: path, Err: err}
	}
	return c, nil
}

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

// Config returns the current configuration.
func (s *Store) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// LoadError returns why the stored config.json could not be used, or nil.
func (s *Store) LoadError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadErr
}

// Save validates c, writes it atomically with mode 0600 and then tells
// the watchers (see Watch). An invalid c is refused with an Errors value
// and nothing on disk changes. Save replaces the whole document; a change
// of some fields (a web form) goes through Update, so that it cannot undo
// what another change saved meanwhile.
func (s *Store) Save(c Config) error {
	return s.Update(func(cur *Config) error {
		*cur = c
		return nil
	})
}

// Update changes the configuration atomically: fn gets a copy of the
// current configuration to change, and the result is validated and saved
// (as Save does) before any other Save or Update can read or write it.
// An error from fn, or a result that does not validate, changes nothing.
//
// fn runs with the store locked: it must only set fields. Anything slow,
// such as checking a DNS token with the provider, belongs before the
// Update, with fn then setting just the fields that were checked.
func (s *Store) Update(fn func(*Config) error) error {
	s.mu.Lock()
	c, err := s.cur.clone() // fn must not write into s.cur's slices and maps
	if err == nil {
		err = fn(&c)
	}
	if err == nil {
		err = s.commitLocked(c)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.notify()
	return nil
}

// clone returns a deep copy of c through its JSON form, which holds every
// field (the document is the schema), so a copy shares no slice or map.
func (c Config) clone() (Config, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return Config{}, fmt.Errorf("copying config: %w", err)
	}
	var out Config
	if err := json.Unmarshal(b, &out); err != nil {
		return Config{}, fmt.Errorf("copying config: %w", err)
	}
	return out, nil
}

// commitLocked validates c and makes it the stored configuration.
func (s *Store) commitLocked(c Config) error {
	c.Version = SchemaVersion
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	path := filepath.Join(s.dir, FileName)
	if s.loadErr != nil {
		// Keep the unreadable file for the user (or a bug report)
		// instead of overwriting it.
		aside := fmt.Sprintf("%s.broken-%s", path, s.now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(path, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("moving the broken config aside: %w", err)
		}
	}
	if err := statefile.Write(path, b, 0600); err != nil {
		return fmt.Errorf("saving config: %w", err)
	}
	s.cur = c
	s.loadErr = nil
	return nil
}

// Current returns the configuration with its generation, a number that
// grows with every successful Save or secret change (the first
// configuration is generation 1). A service that applied generation g has
// applied everything saved before Generation returned g.
func (s *Store) Current() (Config, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.gen
}

// Generation returns the current generation (see Current).
func (s *Store) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// Watch returns a channel that receives a value after changes: every
// successful Save or secret change makes sure one value is waiting. It
// never blocks the saver and coalesces a burst into one value, so a
// reader that is busy applying one configuration then reads Current and
// goes straight to the newest, skipping the ones in between. stop ends
// the watch.
func (s *Store) Watch() (changes <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.watchers[ch] = true
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.watchers, ch)
	}
}

// notify records a change: a new generation, and a value for every
// watcher that has none waiting.
func (s *Store) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	for ch := range s.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
