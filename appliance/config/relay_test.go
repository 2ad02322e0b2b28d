package config

import (
	"errors"
	"strings"
	"testing"
)

var testPin = "sha256-raw:" + strings.Repeat("3f", 32)

func TestRelayMeshAndLimitsValid(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(*Relay)
	}{
		{"mesh with host", func(r *Relay) { r.MeshWith = []string{"derp2.example.com"} }},
		{"mesh with port and dial host", func(r *Relay) { r.MeshWith = []string{"derp2.example.com:12345/192.168.1.20"} }},
		{"mesh with IPv6", func(r *Relay) { r.MeshWith = []string{"[2001:db8::1]:12345/[2001:db8::2]"} }},
		{"mesh with a pin", func(r *Relay) {
			r.MeshWith = []string{"derp2.example.com:12345/192.168.1.20", "derp3.example.com"}
			r.MeshPins = map[string]string{"derp2.example.com:12345": testPin}
		}},
		{"rate limits", func(r *Relay) {
			r.PerClientBytesPerSec, r.PerClientBurstBytes = 1_000_000, 1<<20
			r.AcceptConnPerSec, r.AcceptConnBurst = 20, 50
		}},
		{"socket path", func(r *Relay) { r.VerifyClients, r.TailscaledSocket = true, "/perm/tailscaled/tailscaled.sock" }},
		{"verify URL fail open", func(r *Relay) {
			r.VerifyClientURL, r.VerifyClientURLFailOpen = "https://headscale.example.com/verify", true
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c.Relay)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestRelayMeshAndLimitsInvalid(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(*Relay)
		path   string
		msg    string
	}{
		{"empty mesh entry", func(r *Relay) { r.MeshWith = []string{""} }, "relay.mesh_with[0]", "host[:port]"},
		{"mesh entry with spaces", func(r *Relay) { r.MeshWith = []string{"a.example.com b.example.com"} }, "relay.mesh_with[0]", "host[:port]"},
		{"comma list in one entry", func(r *Relay) { r.MeshWith = []string{"a.example.com,b.example.com"} }, "relay.mesh_with[0]", "host[:port]"},
		{"bad mesh port", func(r *Relay) { r.MeshWith = []string{"derp2.example.com:99999"} }, "relay.mesh_with[0]", "not a port number"},
		{"bare IPv6", func(r *Relay) { r.MeshWith = []string{"2001:db8::1"} }, "relay.mesh_with[0]", "brackets"},
		{"dial host with port", func(r *Relay) { r.MeshWith = []string{"derp2.example.com:1/10.0.0.1:5"} }, "relay.mesh_with[0]", "takes no port"},
		{"empty dial host", func(r *Relay) { r.MeshWith = []string{"derp2.example.com/"} }, "relay.mesh_with[0]", "host[:port]"},
		{"pin for no peer", func(r *Relay) {
			r.MeshWith = []string{"derp2.example.com"}
			r.MeshPins = map[string]string{"derp3.example.com": testPin}
		}, "relay.mesh_pins", "not the host[:port] of any"},
		{"malformed pin", func(r *Relay) {
			r.MeshWith = []string{"derp2.example.com"}
			r.MeshPins = map[string]string{"derp2.example.com": "sha256:abc"}
		}, "relay.mesh_pins", "sha256-raw:<64 hex digits>"},
		{"burst without rate", func(r *Relay) { r.PerClientBurstBytes = 1 << 20 }, "relay.per_client_burst_bytes", "needs a rate"},
		{"accept burst without rate", func(r *Relay) { r.AcceptConnBurst = 5 }, "relay.accept_conn_burst", "needs a rate"},
		{"negative accept rate", func(r *Relay) { r.AcceptConnPerSec = -1 }, "relay.accept_conn_per_sec", "negative"},
		{"relative socket", func(r *Relay) { r.TailscaledSocket = "tailscaled.sock" }, "relay.tailscaled_socket", "absolute"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c.Relay)
			var errs Errors
			if !errors.As(c.Validate(), &errs) {
				t.Fatalf("Validate: got %v, want an Errors value", c.Validate())
			}
			msgs := strings.Join(errs.For(tt.path), "\n")
			if !strings.Contains(msgs, tt.msg) {
				t.Errorf("Validate: %s: got %q, want a message containing %q (all: %v)", tt.path, msgs, tt.msg, errs)
			}
		})
	}
}

func TestMeshPinsRoundTrip(t *testing.T) {
	c := valid()
	c.Relay.MeshWith = []string{"derp2.example.com:12345"}
	c.Relay.MeshPins = map[string]string{"derp2.example.com:12345": testPin}
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"mesh_pins"`) {
		t.Errorf("marshalled config lacks mesh_pins:\n%s", b)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Relay.MeshPins["derp2.example.com:12345"] != testPin {
		t.Errorf("round trip: got %v", got.Relay.MeshPins)
	}
}
