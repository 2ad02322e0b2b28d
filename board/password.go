package main

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/homederp/homederp/board/gokrazyconfig"
	"github.com/homederp/homederp/internal/statefile"
)

// httpPassword finds the password for gokrazy's web interface the way gok
// does, so a box installed with gok and updated with board (or the other
// way round) keeps one password: an explicit file, Update.HTTPPassword in
// config.json, ~/.config/gokrazy/hosts/<hostname>/http-password.txt,
// ~/.config/gokrazy/http-password.txt; if none exists, a random one is
// saved in the last place. It returns the password and where it is.
func httpPassword(cfg *gokrazyconfig.Config, explicit string) (pw, source string, err error) {
	read := func(p string) (string, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		pw := strings.TrimSpace(string(b))
		if pw == "" {
			return "", fmt.Errorf("%s is empty", p)
		}
		return pw, nil
	}
	if explicit != "" {
		pw, err := read(explicit)
		return pw, explicit, err
	}
	if cfg.Update != nil && cfg.Update.HTTPPassword != "" {
		return cfg.Update.HTTPPassword, cfg.Path + " (Update.HTTPPassword)", nil
	}
	dir, owner, err := configHome()
	if err != nil {
		return "", "", fmt.Errorf("finding the gokrazy password: %w", err)
	}
	gokrazyDir := filepath.Join(dir, "gokrazy")
	for _, p := range []string{
		filepath.Join(gokrazyDir, "hosts", cfg.Hostname, "http-password.txt"),
		filepath.Join(gokrazyDir, "http-password.txt"),
	} {
		if pw, err := read(p); err == nil {
			return pw, p, nil
		} else if !os.IsNotExist(err) {
			return "", "", err
		}
	}
	pw, err = randomPassword(20)
	if err != nil {
		return "", "", err
	}
	p := filepath.Join(gokrazyDir, "http-password.txt")
	if err := os.MkdirAll(gokrazyDir, 0700); err != nil {
		return "", "", err
	}
	// No trailing newline, as gok writes it (so it pastes cleanly).
	if err := statefile.Write(p, []byte(pw), 0600); err != nil {
		return "", "", fmt.Errorf("saving the new gokrazy password: %w", err)
	}
	if owner != nil {
		for _, q := range []string{gokrazyDir, p} {
			if err := os.Chown(q, owner[0], owner[1]); err != nil {
				return "", "", err
			}
		}
	}
	return pw, p + " (new)", nil
}

// configHome is the user's configuration directory. Under sudo (flash
// needs root) it is the invoking user's, so `sudo board flash -board ...`
// and a later `board update` use the same password; owner is then that
// user's uid and gid, for a file created on their behalf.
func configHome() (dir string, owner []int, err error) {
	if name := os.Getenv("SUDO_USER"); name != "" && os.Geteuid() == 0 {
		u, err := user.Lookup(name)
		if err != nil {
			return "", nil, err
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil {
			return filepath.Join(u.HomeDir, ".config"), []int{uid, gid}, nil
		}
	}
	dir, err = os.UserConfigDir()
	return dir, nil, err
}

func randomPassword(n int) (string, error) {
	const charset = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(charset))))
		if err != nil {
			return "", err
		}
		b[i] = charset[k.Int64()]
	}
	return string(b), nil
}
