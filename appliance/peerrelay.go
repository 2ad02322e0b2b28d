package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/relay/peerrelay"
)

// peerRelayRecheck is how often the box's tailscaled is checked for the
// peer relay setting, besides on every configuration change.
const peerRelayRecheck = 30 * time.Second

// peerRelayService keeps the box's tailscaled's relay server port as the
// configuration says, and offers peers the line's public IPv4 with that
// port (the router's port-forward) as ddns detects it. The web UI sets it when the switch is saved; this
// covers what happens afterwards: tailscaled was not running then, or it
// started afresh with a new login profile (after a logout), which has no
// such preference. It leaves tailscaled alone until the configuration
// has had the relay on once in this run, so that a tailscaled whose peer
// relay someone set by hand (or a developer's, under -dev) is not turned
// off by a switch nobody touched.
//
// Like the other services it follows the store on its own goroutine
// (see loop.go), but it also looks again every peerRelayRecheck whatever
// changed, so it keeps its own loop.
type peerRelayService struct {
	a       *app
	changes <-chan struct{} // the store's changes
	unwatch func()
	stop    chan struct{}
	wg      sync.WaitGroup
}

func newPeerRelayService(a *app) *peerRelayService {
	changes, unwatch := a.store.Watch()
	ps := &peerRelayService{a: a, changes: changes, unwatch: unwatch, stop: make(chan struct{})}
	ps.wg.Add(1)
	go func() {
		defer ps.wg.Done()
		defer ps.unwatch()
		ps.loop()
	}()
	return ps
}

func (ps *peerRelayService) loop() {
	t := time.NewTicker(peerRelayRecheck)
	defer t.Stop()
	touched := false
	lastErr := ""
	for {
		c := ps.a.store.Config()
		touched = touched || c.PeerRelay.Enabled
		if touched {
			err := ps.sync(c)
			// A lasting problem (tailscaled not running) is logged
			// when it starts and when it changes, not every 30 s.
			if msg := fmt.Sprint(err); err != nil && msg != lastErr {
				ps.a.logf("peerrelay: %v", err)
				lastErr = msg
			} else if err == nil {
				lastErr = ""
			}
		}
		select {
		case <-ps.stop:
			return
		case <-ps.changes: // a pass reads the newest configuration
		case <-t.C:
		}
	}
}

// sync sets the box's tailscaled's relay port and advertised addresses
// as c (and ddns) say, logging what it changed.
func (ps *peerRelayService) sync(c config.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lc := tailscaledClient(c)
	port := c.PeerRelay.ActivePort()
	changed, err := peerrelay.Apply(ctx, lc, port)
	if err != nil {
		return err
	}
	switch {
	case changed && port == 0:
		ps.a.logf("peerrelay: the box's tailscaled no longer relays")
	case changed:
		ps.a.logf("peerrelay: the box's tailscaled relays on udp %d", port)
	}
	addrs := forwardedEndpoints(c, ps.a.ddns.Status())
	if changed, err := peerrelay.Advertise(ctx, lc, addrs); err != nil {
		return err
	} else if changed && len(addrs) > 0 {
		ps.a.logf("peerrelay: offering peers %v (the router's port-forward)", addrs)
	}
	return nil
}

// forwardedEndpoints is where peers on the Internet reach the relay over
// IPv4 through the router's port-forward: the line's public IPv4 as ddns
// detected it, with the relay's port. None when the relay is off, the
// address is unknown (no ddns), or the line has no public IPv4 of its own
// (CGNAT, DS-Lite: a forward on the home router does not help). IPv6 needs
// none: the box's global address is its own, and tailscaled offers it.
func forwardedEndpoints(c config.Config, ds ddns.Status) []netip.AddrPort {
	if !c.PeerRelay.Enabled || !ds.PublicIPv4.IsValid() || ds.NoIPv4 || ds.CGNAT {
		return nil
	}
	return []netip.AddrPort{netip.AddrPortFrom(ds.PublicIPv4, uint16(c.PeerRelay.Port))}
}

func (ps *peerRelayService) close() {
	close(ps.stop)
	ps.wg.Wait()
}
