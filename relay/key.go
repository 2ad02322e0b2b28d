package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/homederp/homederp/internal/statefile"
	"tailscale.com/types/key"
)

// keyFile has derper's format ({"PrivateKey": "privkey:…"}), so a key can
// move between homederp and upstream derper.
type keyFile struct {
	PrivateKey key.NodePrivate
}

// LoadOrCreateKey returns the DERP server's node key stored at path,
// creating it (mode 0600, atomically) on first use. The key is the relay's
// identity: clients and mesh peers see it, so it must survive restarts.
func LoadOrCreateKey(path string) (key.NodePrivate, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		kf := keyFile{PrivateKey: key.NewNode()}
		b, err := json.MarshalIndent(kf, "", "\t")
		if err != nil {
			return key.NodePrivate{}, err
		}
		if err := statefile.Write(path, b, 0600); err != nil {
			return key.NodePrivate{}, fmt.Errorf("saving new DERP key: %w", err)
		}
		return kf.PrivateKey, nil
	case err != nil:
		return key.NodePrivate{}, fmt.Errorf("reading DERP key: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return key.NodePrivate{}, fmt.Errorf("DERP key %s is corrupt (move it away to make a new one): %w", path, err)
	}
	if kf.PrivateKey.IsZero() {
		return key.NodePrivate{}, fmt.Errorf("DERP key %s holds no key", path)
	}
	return kf.PrivateKey, nil
}
