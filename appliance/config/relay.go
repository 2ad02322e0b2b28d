package config

import (
	"fmt"
	"strings"

	"github.com/homederp/homederp/relay/spec"
)

// Relay configures the DERP and STUN listeners.
type Relay struct {
	DERPPort int `json:"derp_port"` // e.g. 12345 (tcp, TLS)
	STUNPort int `json:"stun_port"` // e.g. 3478 (udp)

	// VerifyClients admits only clients whose node key the box's own
	// tailscaled knows (derper's --verify-clients).
	VerifyClients bool `json:"verify_clients"`
	// TailscaledSocket overrides the LocalAPI socket of the box's
	// tailscaled; empty means the platform default
	// (/perm/tailscaled/tailscaled.sock on gokrazy).
	TailscaledSocket string `json:"tailscaled_socket,omitempty"`

	// VerifyClientURL is an admission URL (e.g. headscale's /verify),
	// an alternative to VerifyClients.
	VerifyClientURL string `json:"verify_client_url,omitempty"`
	// VerifyClientURLFailOpen admits clients when VerifyClientURL cannot
	// be reached. Off by default: an unreachable verifier refuses.
	VerifyClientURLFailOpen bool `json:"verify_client_url_fail_open,omitempty"`

	// MeshWith lists the other DERP servers of this region, in derper's
	// --mesh-with form: "host[:port]" or "host[:port]/dialhost". The mesh
	// key is the secret SecretMeshKey.
	MeshWith []string `json:"mesh_with,omitempty"`
	// MeshPins pins the certificate of a mesh peer that serves a
	// self-signed certificate (another homederp box): the key is the
	// host[:port] part of a MeshWith entry, the value the
	// "sha256-raw:<hex>" CertName from that box's DERP map, e.g.
	// {"derp2.example.com:12345": "sha256-raw:3f5c…"}. A peer without a
	// pin must present a certificate a CA vouches for, as derper wants.
	MeshPins map[string]string `json:"mesh_pins,omitempty"`

	// Rate limits for an upload-capped home line. Zero means unlimited.
	PerClientBytesPerSec int64   `json:"per_client_bytes_per_sec,omitempty"`
	PerClientBurstBytes  int64   `json:"per_client_burst_bytes,omitempty"`
	AcceptConnPerSec     float64 `json:"accept_conn_per_sec,omitempty"`
	AcceptConnBurst      int     `json:"accept_conn_burst,omitempty"`
}

func defaultRelay() Relay {
	return Relay{DERPPort: 12345, STUNPort: 3478}
}

func (r Relay) validate(errs *Errors) {
	checkPort(errs, "relay.derp_port", r.DERPPort)
	checkPort(errs, "relay.stun_port", r.STUNPort)
	switch r.DERPPort {
	case 80:
		errs.add("relay.derp_port", "setting.derp_port_80", "port 80 belongs to the box's web interface; choose another DERP port (12345 is the usual choice)", nil)
	case 8080, 8443:
		errs.add("relay.derp_port", "setting.derp_port_gokrazy", "port {{.Port}} belongs to gokrazy's own web interface and update API on the box; choose another DERP port (12345 is the usual choice)", Args{"Port": r.DERPPort})
	}
	if r.VerifyClients && r.VerifyClientURL != "" {
		errs.add("relay.verify_client_url", "setting.verify_both", "choose either verify_clients (the box's tailscaled) or a verify URL, not both", nil)
	}
	if u := r.VerifyClientURL; u != "" {
		if err := spec.CheckVerifyURL(u); err != nil {
			errs.addErr("relay.verify_client_url", err)
		}
	}
	hosts := map[string]bool{}
	for i, m := range r.MeshWith {
		if _, err := spec.ParseMeshWith(m); err != nil {
			errs.addErr(fmt.Sprintf("relay.mesh_with[%d]", i), err)
		}
		host, _, _ := strings.Cut(m, "/")
		hosts[host] = true
	}
	for host, pin := range r.MeshPins {
		if !hosts[host] {
			errs.add("relay.mesh_pins", "setting.mesh_pin_orphan", "{{printf \"%q\" .Host}} is pinned but is not the host[:port] of any mesh_with entry", Args{"Host": host})
		}
		if err := spec.CheckPin(pin); err != nil {
			errs.add("relay.mesh_pins", "setting.mesh_pin", "the pin for {{printf \"%q\" .Host}}: {{.Err}}", Args{"Host": host, "Err": err})
		}
	}
	if r.PerClientBytesPerSec < 0 {
		errs.add("relay.per_client_bytes_per_sec", "setting.negative_unlimited", "must not be negative (0 means unlimited)", nil)
	}
	if r.PerClientBurstBytes < 0 {
		errs.add("relay.per_client_burst_bytes", "setting.negative", "must not be negative", nil)
	}
	if r.PerClientBytesPerSec > 0 && r.PerClientBurstBytes > 0 && r.PerClientBurstBytes < 64<<10 {
		errs.add("relay.per_client_burst_bytes", "setting.burst_small", "must be at least 65536 bytes, or a single DERP frame could never pass", nil)
	}
	if r.AcceptConnPerSec < 0 {
		errs.add("relay.accept_conn_per_sec", "setting.negative_unlimited", "must not be negative (0 means unlimited)", nil)
	}
	if r.AcceptConnBurst < 0 {
		errs.add("relay.accept_conn_burst", "setting.negative", "must not be negative", nil)
	}
	if r.PerClientBurstBytes > 0 && r.PerClientBytesPerSec == 0 {
		errs.add("relay.per_client_burst_bytes", "setting.burst_needs_rate", "a burst needs a rate ({{.Rate}}); 0 means unlimited", Args{"Rate": "per_client_bytes_per_sec"})
	}
	if r.AcceptConnBurst > 0 && r.AcceptConnPerSec == 0 {
		errs.add("relay.accept_conn_burst", "setting.burst_needs_rate", "a burst needs a rate ({{.Rate}}); 0 means unlimited", Args{"Rate": "accept_conn_per_sec"})
	}
	if r.TailscaledSocket != "" && !strings.HasPrefix(r.TailscaledSocket, "/") {
		errs.add("relay.tailscaled_socket", "setting.socket_relative", "{{printf \"%q\" .Path}} is not an absolute path, e.g. /perm/tailscaled/tailscaled.sock", Args{"Path": r.TailscaledSocket})
	}
}

func checkPort(errs *Errors, path string, p int) {
	if p < 1 || p > 65535 {
		errs.add(path, "setting.port_range", "{{.Port}} is not a port number (1–65535)", Args{"Port": p})
	}
}
