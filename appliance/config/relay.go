package config

import (
	"fmt"
	"strings"
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
	if r.DERPPort == 80 {
		errs.add("relay.derp_port", "port 80 belongs to the box's web interface; choose another DERP port (12345 is the usual choice)")
	}
	if r.VerifyClients && r.VerifyClientURL != "" {
		errs.add("relay.verify_client_url", "choose either verify_clients (the box's tailscaled) or a verify URL, not both")
	}
	if u := r.VerifyClientURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		errs.add("relay.verify_client_url", fmt.Sprintf("%q is not an http:// or https:// URL", u))
	}
	for i, m := range r.MeshWith {
		if strings.TrimSpace(m) == "" || strings.Count(m, "/") > 1 {
			errs.add(fmt.Sprintf("relay.mesh_with[%d]", i), fmt.Sprintf("%q is not of the form host[:port] or host[:port]/dialhost", m))
		}
	}
	if r.PerClientBytesPerSec < 0 {
		errs.add("relay.per_client_bytes_per_sec", "must not be negative (0 means unlimited)")
	}
	if r.PerClientBurstBytes < 0 {
		errs.add("relay.per_client_burst_bytes", "must not be negative")
	}
	if r.PerClientBytesPerSec > 0 && r.PerClientBurstBytes > 0 && r.PerClientBurstBytes < 64<<10 {
		errs.add("relay.per_client_burst_bytes", "must be at least 65536 bytes, or a single DERP frame could never pass")
	}
	if r.AcceptConnPerSec < 0 {
		errs.add("relay.accept_conn_per_sec", "must not be negative (0 means unlimited)")
	}
	if r.AcceptConnBurst < 0 {
		errs.add("relay.accept_conn_burst", "must not be negative")
	}
}

func checkPort(errs *Errors, path string, p int) {
	if p < 1 || p > 65535 {
		errs.add(path, fmt.Sprintf("%d is not a port number (1–65535)", p))
	}
}
