package relay

import "time"

// Status is what the web UI shows about the relay. It is a snapshot:
// values do not change after Status returns.
type Status struct {
	Hostname  string   // e.g. "derp.example.com"
	DERPAddr  string   // bound listener, e.g. "[::]:12345"
	STUNAddrs []string // bound listeners, e.g. ["[::]:3478"]

	ClientsConnected int   // DERP clients connected now (mesh peers excluded)
	MeshPeers        int   // mesh peers connected now
	BytesReceived    int64 // DERP payload bytes received since start
	BytesSent        int64 // DERP payload bytes sent since start
	Refused          int64 // clients refused by verify-clients / verify URL since start
	STUNRequests     int64 // STUN binding requests answered since start
	STUNErrors       int64 // datagrams that were not STUN, and read/write errors

	// Cert describes the certificate being served.
	CertMode     string    // "self-signed", "manual" or "acme-dns"
	CertNotAfter time.Time // expiry of the served certificate
	CertIssuer   string    // e.g. "homederp self-signed", "(STAGING) Let's Encrypt"
	CertError    string    // why the wanted certificate is not served, in plain words; "" if fine

	// Verify describes client admission.
	VerifyMode string // "off", "tailscaled" or "url"
	// TailscaledState is the box's tailscaled as verify-clients sees it,
	// e.g. "Running", "NeedsLogin", "Stopped", "unreachable: <reason>".
	TailscaledState string
}
