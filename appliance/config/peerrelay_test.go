package config

import (
	"errors"
	"strings"
	"testing"
)

func TestPeerRelayDefaultsOff(t *testing.T) {
	// A config.json written before the peer relay existed gets it off,
	// with the default port ready for the switch.
	c, err := Parse([]byte(`{"version": 1, "hostname": "derp.example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.PeerRelay, (PeerRelay{Enabled: false, Port: DefaultPeerRelayPort}); got != want {
		t.Errorf("PeerRelay of an old document: got %+v, want %+v", got, want)
	}
}

func TestValidatePeerRelay(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(*Config)
		msg    string // substring of the peer_relay.port error; "" for none
	}{
		{"on with the default port", func(c *Config) { c.PeerRelay.Enabled = true }, ""},
		{"off with a clashing port", func(c *Config) { c.PeerRelay.Port = 3478 }, ""},
		{"on, the STUN port", func(c *Config) { c.PeerRelay = PeerRelay{true, 3478} }, "STUN port"},
		{"on, a moved STUN port", func(c *Config) { c.Relay.STUNPort = 40000; c.PeerRelay.Enabled = true }, "STUN port"},
		{"on, the DERP port", func(c *Config) { c.PeerRelay = PeerRelay{true, 12345} }, "DERP port"},
		{"on, tailscaled's port", func(c *Config) { c.PeerRelay = PeerRelay{true, 41641} }, "WireGuard port"},
		{"on, DHCP", func(c *Config) { c.PeerRelay = PeerRelay{true, 68} }, "DHCP"},
		{"on, gokrazy's web UI", func(c *Config) { c.PeerRelay = PeerRelay{true, 8080} }, "web interfaces"},
		{"zero", func(c *Config) { c.PeerRelay.Port = 0 }, "not a port number"},
		{"too big", func(c *Config) { c.PeerRelay = PeerRelay{true, 65536} }, "not a port number"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			err := c.Validate()
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("Validate: got %v, want no error", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Validate: got %v, want an Errors value", err)
			}
			if msgs := errs.For("peer_relay.port"); !strings.Contains(strings.Join(msgs, "\n"), tt.msg) {
				t.Errorf("Validate: peer_relay.port: got %q (all: %v), want a message containing %q", msgs, err, tt.msg)
			}
		})
	}
}
