package relay

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"

	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/derp/derpserver"
	"tailscale.com/types/key"
)

// Policy is the part of the relay's configuration that changes while it
// runs: who may connect, which servers it meshes with, and how fast
// clients may send. Apply it with (*Server).Apply.
type Policy struct {
	Verify Verify

	// MeshKey is the pre-shared key of the region's DERP servers (64
	// lowercase hex characters, derper's --mesh-psk-file content); ""
	// means no mesh. A server presenting it is trusted as a mesh peer:
	// it is admitted without verification and may watch connections.
	MeshKey string
	// MeshWith are the other servers of the region (derper's
	// --mesh-with). The relay's own address may be listed: it notices
	// and skips itself, so every box can carry the same list.
	MeshWith []MeshPeer

	// ClientRate limits what each client may send through the relay;
	// mesh peers are exempt (derpserver's per-client rate limit).
	ClientRate RateLimit
	// AcceptRate limits how fast new TCP connections are accepted.
	AcceptRate AcceptLimit

	// TrustedProxies are the addresses of a reverse proxy in front of
	// the relay, e.g. [192.168.1.2/32]: on connections from them the
	// client's address is taken from X-Forwarded-For (forwarded.go).
	TrustedProxies []netip.Prefix
}

// VerifyMode says how the relay admits clients.
type VerifyMode string

const (
	// VerifyOff admits every client.
	VerifyOff VerifyMode = "off"
	// VerifyTailscaled admits only clients whose node key the box's own
	// tailscaled knows (derper's --verify-clients). It fails closed: with
	// tailscaled down or logged out, every client is refused.
	VerifyTailscaled VerifyMode = "tailscaled"
	// VerifyURL asks an admission URL such as headscale's /verify
	// (derper's --verify-client-url).
	VerifyURL VerifyMode = "url"
)

// Verify is the admission policy.
type Verify struct {
	Mode VerifyMode // "" means VerifyOff

	// TailscaledSocket is the LocalAPI socket of the box's tailscaled,
	// e.g. "/perm/tailscaled/tailscaled.sock"; "" means the platform
	// default (which is that path on gokrazy).
	TailscaledSocket string

	// URL is the admission URL for VerifyURL, e.g.
	// "https://headscale.example.com/verify". The relay POSTs
	// tailcfg.DERPAdmitClientRequest and expects {"Allow": true}.
	URL string
	// URLFailOpen admits clients when URL cannot be reached. Upstream
	// derper defaults to true; homederp's default (false) refuses.
	URLFailOpen bool
}

func (v Verify) normalized() Verify {
	if v.Mode == "" {
		v.Mode = VerifyOff
	}
	switch v.Mode {
	case VerifyOff:
		return Verify{Mode: VerifyOff}
	case VerifyTailscaled:
		return Verify{Mode: v.Mode, TailscaledSocket: v.TailscaledSocket}
	case VerifyURL:
		return Verify{Mode: v.Mode, URL: v.URL, URLFailOpen: v.URLFailOpen}
	}
	return v
}

// RateLimit is a token bucket on bytes a client sends. Zero BytesPerSec
// means unlimited.
type RateLimit struct {
	BytesPerSec int64 // e.g. 1_000_000 for 8 Mbit/s
	// BurstBytes is the bucket depth; derpserver raises anything below
	// one maximal DERP frame (65 568 bytes) to that.
	BurstBytes int64
}

// AcceptLimit is a token bucket on accepted connections, like derper's
// --accept-connection-limit and --accept-connection-burst. Zero PerSec
// means unlimited.
type AcceptLimit struct {
	PerSec float64 // e.g. 20
	Burst  int     // e.g. 50; at least 1 when PerSec is set
}

// Validate checks p without applying it.
func (p Policy) Validate() error {
	var errs []error
	switch p.Verify.Mode {
	case "", VerifyOff, VerifyTailscaled:
	case VerifyURL:
		if err := spec.CheckVerifyURL(p.Verify.URL); err != nil {
			errs = append(errs, fmt.Errorf("verify URL: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown verify mode %q", p.Verify.Mode))
	}
	if p.MeshKey != "" {
		if _, err := key.ParseDERPMesh(p.MeshKey); err != nil {
			errs = append(errs, fmt.Errorf("mesh key: must be 64 lowercase hex characters: %w", err))
		}
	}
	for _, m := range p.MeshWith {
		if err := m.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if p.ClientRate.BytesPerSec < 0 || p.ClientRate.BurstBytes < 0 {
		errs = append(errs, errors.New("per-client rate limit must not be negative"))
	}
	for _, pf := range p.TrustedProxies {
		if !pf.IsValid() {
			errs = append(errs, errors.New("trusted proxies: an invalid prefix"))
		}
	}
	if p.AcceptRate.PerSec < 0 || p.AcceptRate.Burst < 0 || math.IsNaN(p.AcceptRate.PerSec) {
		errs = append(errs, errors.New("accept limit must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("relay policy: %w", err)
	}
	return nil
}

// Apply switches the relay to policy p. Rate limits and the mesh list
// change in place; a new admission policy or mesh key starts a new DERP
// server behind the same listeners, disconnecting the connected clients,
// which reconnect and are admitted under p (see generation). An invalid
// p is refused with an error and nothing changes.
func (s *Server) Apply(p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return errors.New("relay: closed")
	}
	var retire *generation
	if old := s.gen.Load(); !old.sameServer(p) {
		g, err := s.newGeneration(p)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.gen.Store(g)
		retire = old
		s.logf("relay: new admission policy (verify %s, mesh key set: %v): reconnecting clients", p.Verify.normalized().Mode, p.MeshKey != "")
	}
	s.policy = p
	s.applyLiveLocked(p)
	s.mu.Unlock()
	// Outside the lock: closing waits for the old server's connections
	// to end, which Status need not wait for.
	if retire != nil {
		retire.retire()
		s.mu.Lock()
		s.retired = s.retired.add(retire.counters())
		s.mu.Unlock()
	}
	return nil
}

// Policy returns the policy in effect.
func (s *Server) Policy() Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.policy
	p.MeshWith = slices.Clone(p.MeshWith)
	p.TrustedProxies = slices.Clone(p.TrustedProxies)
	return p
}

// applyLiveLocked applies the parts of p that change in place to the
// current generation. s.mu must be held.
func (s *Server) applyLiveLocked(p Policy) {
	g := s.gen.Load()
	g.derp.UpdateRateLimits(derpserver.RateConfig{
		PerClientRateLimitBytesPerSec: uint64(p.ClientRate.BytesPerSec),
		PerClientRateBurstBytes:       uint64(p.ClientRate.BurstBytes),
	})
	s.accept.set(p.AcceptRate)
	s.trusted.Store(&p.TrustedProxies)
	if !s.running {
		return
	}
	if p.MeshKey != "" {
		g.mesh.update(p.MeshWith)
	} else {
		g.mesh.update(nil)
	}
	if v := p.Verify.normalized(); v.Mode == VerifyTailscaled {
		s.ts.watch(v.TailscaledSocket)
	} else {
		s.ts.stop()
	}
}
