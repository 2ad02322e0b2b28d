package acmedns

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/homederp/homederp/internal/statefile"
)

// storage is certmagic's file storage with two changes.
//
// Every write goes through statefile.Write, as all of homederp's state
// does: certmagic's own atomic write does not sync the directory, so a
// power cut right after a renewal could lose the rename. Files are 0600
// (they include private keys) in 0700 directories, as certmagic makes
// them.
//
// And it can be closed: certmagic runs renewals as jobs of a
// process-wide queue that its Cache.Stop does not wait for. After close,
// no new operation can take a lock (every obtain, renewal and account
// registration takes one first), and only an operation that already
// holds one may still write, so that it can save a certificate the CA
// has just issued. wait then returns once those have let go.
type storage struct {
	*certmagic.FileStorage
	st *storageState
}

type storageState struct {
	mu     sync.Mutex
	closed bool
	held   int // locks taken through this storage and not yet released
}

var errStorageClosed = errors.New("the ACME manager was stopped or replaced")

func newStorage(dir string) storage {
	return storage{&certmagic.FileStorage{Path: dir}, &storageState{}}
}

func (s storage) Store(ctx context.Context, key string, value []byte) error {
	s.st.mu.Lock()
	refuse := s.st.closed && s.st.held == 0
	s.st.mu.Unlock()
	if refuse {
		return errStorageClosed
	}
	name := s.Filename(key)
	if err := os.MkdirAll(filepath.Dir(name), 0700); err != nil {
		return err
	}
	return statefile.Write(name, value, 0600)
}

func (s storage) Lock(ctx context.Context, name string) error {
	if !s.take() {
		return errStorageClosed
	}
	if err := s.FileStorage.Lock(ctx, name); err != nil {
		s.release()
		return err
	}
	return nil
}

func (s storage) TryLock(ctx context.Context, name string) (bool, error) {
	if !s.take() {
		return false, errStorageClosed
	}
	ok, err := s.FileStorage.TryLock(ctx, name)
	if !ok || err != nil {
		s.release()
	}
	return ok, err
}

func (s storage) Unlock(ctx context.Context, name string) error {
	defer s.release()
	return s.FileStorage.Unlock(ctx, name)
}

// take counts a lock about to be taken, unless the storage is closed.
func (s storage) take() bool {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if s.st.closed {
		return false
	}
	s.st.held++
	return true
}

func (s storage) release() {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if s.st.held > 0 {
		s.st.held--
	}
}

func (s storage) close() {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.closed = true
}

// wait polls until no lock taken through s is held, or until deadline.
// It reports whether that happened.
func (s storage) wait(deadline time.Time) bool {
	for {
		s.st.mu.Lock()
		held := s.st.held
		s.st.mu.Unlock()
		if held == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
