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
	// Two-part API keys, kept as a KeyPair in one file so that their
	// halves are always saved and replaced together.
	SecretTencentCloud = "tencentcloud-key" // Tencent Cloud API key: SecretId and SecretKey
	SecretAliDNS       = "alidns-key"       // Alibaba Cloud AccessKey: ID and secret
)

// DNSSecrets are the secrets of the DNS providers.
var DNSSecrets = []string{SecretCloudflareToken, SecretTencentCloud, SecretAliDNS, SecretTSIG}

// ProviderSecret names the secret that holds provider's credential, e.g.
// SecretAliDNS for "alidns"; "" for none.
func ProviderSecret(provider string) string {
	switch provider {
	case ProviderCloudflare:
		return SecretCloudflareToken
	case ProviderTencentCloud:
		return SecretTencentCloud
	case ProviderAliDNS:
		return SecretAliDNS
	case ProviderRFC2136:
		return SecretTSIG
	}
	return ""
}

// KeyPair is a two-part API credential: an ID that names the key and the
// secret that signs requests.
type KeyPair struct {
	ID     string // e.g. "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE" or "LTAI5tExampleExampleExam"
	Secret string
}

// Encode is the secret file's content: the ID and the secret on two
// lines.
func (k KeyPair) Encode() string { return strings.TrimSpace(k.ID) + "\n" + strings.TrimSpace(k.Secret) }

// String shows the ID only, so that a KeyPair in a log line or an error
// never shows its secret.
func (k KeyPair) String() string { return k.ID + " (secret not shown)" }

// ParseKeyPair reads a KeyPair secret as Encode writes it.
func ParseKeyPair(s string) KeyPair {
	id, secret, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return KeyPair{ID: strings.TrimSpace(id), Secret: strings.TrimSpace(secret)}
}

func (s *Store) secretPath(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\.`) {
		return "", fmt.Errorf("invalid secret name %q", name)
	}
	return filepath.Join(s.dir, "secret-"+name), nil
}

// SetSecret stores value (surrounding whitespace trimmed) under name
// atomically with mode 0600 and tells the watchers (see Watch): services
// that use the secret re-read it. An empty value removes the secret.
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
