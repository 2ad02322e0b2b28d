// Package config owns homederp's one configuration document: its schema
// with home-line defaults, validation that explains every problem, and the
// Store that loads and atomically saves it together with its secrets.
//
// The relay, ddns and webui all read the same document through a Store, so
// a setting cannot mean different things to different parts. Library
// packages do not import this package's Store; the appliance translates a
// Config into each library's own options.
package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// SchemaVersion is the version of the document this code writes. Load
// accepts older versions (and upgrades them in memory); a newer version is
// refused, because guessing at unknown fields could lose the user's data.
const SchemaVersion = 1

// Config is the whole configuration document, stored as config.json.
// Secrets are not part of it: see Store.SetSecret.
type Config struct {
	Version int `json:"version"`

	// Hostname is the public name of the relay, the one the DDNS record
	// and the certificate are for, e.g. "derp.example.com". An IP literal
	// works for a static address.
	Hostname string `json:"hostname"`

	Relay   Relay   `json:"relay"`
	Region  Region  `json:"region"`
	Cert    Cert    `json:"cert"`
	DDNS    DDNS    `json:"ddns"`
	Tailnet Tailnet `json:"tailnet"`

	PeerRelay PeerRelay `json:"peer_relay"`
	// ReverseProxy is set when clients reach the relay through a proxy
	// such as nginx on port 443 (see proxy.go).
	ReverseProxy ReverseProxy `json:"reverse_proxy"`
	PortMapping  PortMapping  `json:"port_mapping"`
}

// Region is the DERP region this box (and any mesh peers) form in the map.
type Region struct {
	ID       int    `json:"id"`        // e.g. 900; 900–999 are free for custom regions
	Code     string `json:"code"`      // e.g. "home"
	Name     string `json:"name"`      // e.g. "Home"
	NodeName string `json:"node_name"` // e.g. "900a"
}

// Tailnet says which control server the box's own tailscaled logs in to.
type Tailnet struct {
	// ControlURL is empty for Tailscale's own control server, or the URL
	// of a headscale server, e.g. "https://headscale.example.com".
	ControlURL string `json:"control_url,omitempty"`
}

// Default returns the configuration of a fresh box: a home line with the
// relay on tcp 12345 and STUN on udp 3478 (which the box asks the router
// to forward), region 900 "home", a self-signed certificate, and no DNS
// provider yet.
func Default() Config {
	return Config{
		Version:  SchemaVersion,
		Hostname: "",
		Relay:    defaultRelay(),
		Region: Region{
			ID:       900,
			Code:     "home",
			Name:     "Home",
			NodeName: "900a",
		},
		Cert:        Cert{Mode: CertSelfSigned},
		DDNS:        defaultDDNS(),
		PeerRelay:   defaultPeerRelay(),
		PortMapping: PortMapping{Enabled: true},
	}
}

// Parse decodes a config document. Fields missing from the document keep
// their defaults, so older files gain new settings with sensible values.
// Unknown fields are an error: they are most likely a typo that would
// otherwise be silently ignored.
func Parse(b []byte) (Config, error) {
	c := Default()
	c.Version = 0 // must come from the document
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("parsing config: %w", err)
	}
	if dec.More() {
		return Config{}, fmt.Errorf("parsing config: trailing data after the JSON document")
	}
	switch {
	case c.Version == 0:
		return Config{}, fmt.Errorf("parsing config: missing \"version\"")
	case c.Version > SchemaVersion:
		return Config{}, fmt.Errorf("parsing config: schema version %d is newer than this software understands (%d); update homederp", c.Version, SchemaVersion)
	}
	c.Version = SchemaVersion
	return c, nil
}

// Marshal encodes c as the indented JSON stored on disk.
func Marshal(c Config) ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Duration is a time.Duration that reads and writes as text such as "5m".
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
