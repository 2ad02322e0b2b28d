package relay

import (
	"time"

	"github.com/homederp/homederp/internal/usermsg"
)

// Status is what the web UI shows about the relay. It is a snapshot:
// values do not change after Status returns.
type Status struct {
	Hostname  string   // e.g. "derp.example.com"
	DERPAddrs []string // bound listeners, e.g. ["[::]:12345"]
	STUNAddrs []string // bound listeners, e.g. ["[::]:3478"]
	Started   time.Time

	// Error says why the relay is not serving at all (e.g. a port it
	// cannot bind); "" while it serves.
	Error string

	ClientsConnected int   // DERP clients connected now (mesh peers excluded)
	MeshPeers        int   // mesh peers connected now (outgoing watch links that are up)
	BytesReceived    int64 // DERP payload bytes received since start
	BytesSent        int64 // DERP payload bytes sent since start
	Refused          int64 // clients refused by verify-clients / verify URL since start
	// RefusedNoVerdict counts the refusals (of Refused) made because no
	// verdict came in time: tailscaled or the verify URL not answering,
	// or too many checks already waiting.
	RefusedNoVerdict  int64
	AdmissionsPending int   // admission checks waiting for an answer now
	STUNRequests      int64 // STUN binding requests answered since start
	STUNErrors        int64 // datagrams that were not STUN, and read/write errors
	// The STUN counters are upstream stunserver's, which are global to
	// the process; with one relay per process (the appliance) they are
	// this relay's.

	// Cert describes the certificate being served.
	CertMode     string    // "self-signed", "manual" or "acme-dns"
	CertNotAfter time.Time // expiry of the served certificate
	CertIssuer   string    // e.g. "homederp self-signed", "(STAGING) Let's Encrypt"
	CertError    string    // why the wanted certificate is not served, in plain words; "" if fine
	CertPinned   bool      // the DERP map must pin the certificate (self-signed, or the source says so)

	// Verify describes client admission.
	VerifyMode string // "off", "tailscaled" or "url"
	// TailscaledState is the box's tailscaled as verify-clients sees it,
	// e.g. "Running", "NeedsLogin", "Stopped", "unreachable: <reason>".
	TailscaledState string
	TailscaledPeers int // nodes the box's tailscaled knows: who verify-clients admits
	// VerifyProblem says in plain words why every client is refused
	// (e.g. tailscaled down or logged out); "" when admission works.
	VerifyProblem string
	LastRefusal   Refusal // the most recent refused client; zero if none

	// Rate limits in effect; zero means unlimited.
	ClientRateBytesPerSec int64
	ClientRateBurstBytes  int64
	AcceptPerSec          float64
	AcceptBurst           int
	ConnsAccepted         int64 // TCP connections taken by the accept limit
	ConnsRejected         int64 // TCP connections closed at once by the accept limit

	// Reach says where DERP connections came from: the public addresses
	// are the evidence that the relay is reachable from the Internet.
	Reach Reach

	Mesh      []MeshStatus // one entry per configured mesh peer
	MeshError string       // why the mesh is not running as configured, e.g. no mesh key; "" if fine

	// Msgs are the sentences of Error, CertError, VerifyProblem and
	// MeshError, by their English, for the web UI to translate (as
	// ddns.Status.Msgs); a text without one stays English.
	Msgs map[string]usermsg.Msg `json:"-"`
}

// note records the sentence of the English en, if it has one.
func (st *Status) note(en string, m usermsg.Msg) {
	if en == "" || m.ID == "" {
		return
	}
	if st.Msgs == nil {
		st.Msgs = map[string]usermsg.Msg{}
	}
	st.Msgs[en] = m
}
