// Package ddns keeps a hostname's A and AAAA records pointed at the home
// line's changing public address.
package ddns

import (
	"net/netip"
	"time"

	"github.com/homederp/homederp/internal/usermsg"
)

// Status is what the web UI shows about dynamic DNS. It is a snapshot.
type Status struct {
	Enabled  bool   // a provider is configured
	Provider string // "cloudflare", "rfc2136" or ""
	Hostname string // e.g. "derp.example.com"

	PublicIPv4 netip.Addr // detected public IPv4; invalid if unknown or none
	PublicIPv6 netip.Addr // the box's stable global IPv6; invalid if unknown or none
	NoIPv4     bool       // the line has no public IPv4 (CGNAT, DS-Lite): the map says "IPv4": "none"

	ServedA    []netip.Addr // what the zone's authoritative servers answer for A
	ServedAAAA []netip.Addr // ... and for AAAA

	LastCheck  time.Time // last completed check
	LastChange time.Time // last successful, verified record update
	NextCheck  time.Time

	// Warnings are problems in plain words, e.g. "Your provider shares
	// one public IPv4 among many customers (CGNAT) ...".
	Warnings []string
	// LastError is the last failed check or update, "" after a success.
	LastError string
	// History is the most recent changes and errors, newest first.
	History []Event

	// Fields below were added after the first contract.

	Zone    string // the zone holding Hostname, e.g. "example.com."
	CGNAT   bool   // the router's WAN address is in 100.64.0.0/10
	Proxied bool   // the authoritative servers answer with Cloudflare proxy addresses
	// Sources says what each detection source reported at the last
	// check, e.g. "stun 198.51.100.1:3478: 203.0.113.9".
	Sources []string
	// Msgs are the sentences of Warnings and LastError as the web UI
	// translates them (internal/usermsg), by their English; a sentence
	// not here stays English.
	Msgs map[string]usermsg.Msg `json:"-"`
}

// Event is one entry of the persisted history.
type Event struct {
	Time    time.Time
	Kind    string // "change", "error" or "warning"
	Message string // e.g. "A derp.example.com: 198.51.100.7 → 203.0.113.9"
}
