package portmap

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/homederp/homederp/internal/statefile"
)

// StateFile is the name of the mapper's state in Options.StateDir.
const StateFile = "portmap.json"

// held is one mapping or pinhole the box created on the router. It is
// what the box may renew and must remove: nothing else is ever touched.
type held struct {
	Port     Port           `json:"port"`
	IPv6     bool           `json:"ipv6,omitempty"` // a pinhole for the box's IPv6 address
	Via      string         `json:"via"`            // PCP, NAT-PMP or UPnP-IGD
	Server   string         `json:"server"`         // the PCP/NAT-PMP server (addr:port) or the IGD's description URL
	Internal netip.AddrPort `json:"internal"`       // the box's address and port as the router sees them
	External netip.AddrPort `json:"external"`       // where the Internet reaches it
	Granted  time.Time      `json:"granted"`        // the last successful request
	Lifetime time.Duration  `json:"lifetime"`       // as granted; 0 = permanent (UPnP routers that keep only those)
	Epoch    uint32         `json:"epoch,omitempty"`
	// PinholeID is the UniqueID the router last gave the UPnP pinhole,
	// kept for diagnosis only: routers renumber pinholes when they
	// restart, so the box names its pinhole by protocol, address and port.
	PinholeID   uint16 `json:"pinhole_id,omitempty"`
	Description string `json:"description,omitempty"` // the UPnP mapping's description
	// Unwanted is when the box first tried to remove it and failed (the
	// router did not answer); removal is retried until the lease ends,
	// or for a day for a permanent mapping.
	Unwanted time.Time `json:"unwanted,omitzero"`
}

// expires is when the router drops the mapping by itself; zero for a
// permanent one.
func (h held) expires() time.Time {
	if h.Lifetime == 0 {
		return time.Time{}
	}
	return h.Granted.Add(h.Lifetime)
}

// renewAt is when to ask again: at half the granted lifetime, as
// tailscale's portmapper and RFC 6886 do. A permanent mapping is checked
// (re-added, which is harmless) every hour.
func (h held) renewAt() time.Time {
	if h.Lifetime == 0 {
		return h.Granted.Add(time.Hour)
	}
	return h.Granted.Add(h.Lifetime / 2)
}

func (h held) key() heldKey { return heldKey{h.Port.Proto, h.Port.Port, h.IPv6} }

type heldKey struct {
	proto string
	port  uint16
	ipv6  bool
}

// state is portmap.json.
type state struct {
	// Nonce identifies the box's PCP mappings (RFC 6887 section 11.1).
	Nonce [12]byte `json:"nonce"`
	Held  []held   `json:"held"`
}

// loadState reads the state, or makes a new nonce when there is none. A
// corrupt file is an error: the box would otherwise forget mappings it
// must remove.
func loadState(dir string) (state, error) {
	var st state
	if dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, StateFile))
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &st); err != nil {
				return state{}, fmt.Errorf("reading %s: %w", filepath.Join(dir, StateFile), err)
			}
			return st, nil
		case !errors.Is(err, fs.ErrNotExist):
			return state{}, fmt.Errorf("reading the port-mapping state: %w", err)
		}
	}
	if _, err := rand.Read(st.Nonce[:]); err != nil {
		return state{}, err
	}
	return st, nil
}

func saveState(dir string, st state) error {
	if dir == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return statefile.Write(filepath.Join(dir, StateFile), append(b, '\n'), 0600)
}
