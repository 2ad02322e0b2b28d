package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/homederp/homederp/internal/statefile"
)

// Names of the secrets a Store keeps. Each is its own 0600 file next to
// config.json and is never rendered back to a browser.
const (
	SecretCloudflareToken = "cloudflare-token" // Cloudflare API token (DNS edit, zone read)
	SecretTSIG            = "tsig-secret"      // base64 TSIG secret for RFC 2136
	SecretMeshKey         = "mesh-key"         // 64 hex characters shared by the region's DERP servers
)

func (s *Store) secretPath(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\.`) {
		return "", fmt.Errorf("invalid secret name %q", name)
	}
	return filepath.Join(s.dir, "secret-"+name), nil
}

// SetSecret stores value (surrounding whitespace trimmed) under name
// atomically with mode 0600 and notifies subscribers. An empty value
// removes the secret.
func (s *Store) SetSecret(name, value string) error {
	path, err := s.secretPath(name)
	if err != nil {
		return err
	}
	value = strings.TrimSpace(value)
	if value == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing secret %s: %w", name, err)
		}
	} else if err := statefile.Write(path, []byte(value+"\n"), 0600); err != nil {
		return fmt.Errorf("saving secret %s: %w", name, err)
	}
	s.notify()
	return nil
}

// Secret returns the secret called name, or "" if it is not set.
func (s *Store) Secret(name string) (string, error) {
	path, err := s.secretPath(name)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading secret %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// HasSecret reports whether the secret called name is set, so a form can
// say "a token is saved" without ever reading it out.
func (s *Store) HasSecret(name string) bool {
	v, err := s.Secret(name)
	return err == nil && v != ""
}
