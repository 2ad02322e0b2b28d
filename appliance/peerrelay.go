package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/peerrelay"
)

// peerRelayRecheck is how often the box's tailscaled is checked for the
// peer relay setting, besides on every configuration change.
const peerRelayRecheck = 30 * time.Second

// peerRelayService keeps the box's tailscaled's relay server port as the
// configuration says. The web UI sets it when the switch is saved; this
// covers what happens afterwards: tailscaled was not running then, or it
// started afresh with a new login profile (after a logout), which has no
// such preference. It leaves tailscaled alone until the configuration
// has had the relay on once in this run, so that a tailscaled whose peer
// relay someone set by hand (or a developer's, under -dev) is not turned
// off by a switch nobody touched.
type peerRelayService struct {
	a    *app
	kick chan struct{} // a configuration change
	stop chan struct{}
	wg   sync.WaitGroup
}

func newPeerRelayService(a *app) *peerRelayService {
	ps := &peerRelayService{a: a, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	ps.wg.Add(1)
	go func() {
		defer ps.wg.Done()
		ps.loop()
	}()
	return ps
}

// apply notes a configuration change; the loop acts on it.
func (ps *peerRelayService) apply(config.Config) {
	select {
	case ps.kick <- struct{}{}:
	default: // a pass is pending already; it reads the newest config
	}
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
			port := c.PeerRelay.ActivePort()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			changed, err := peerrelay.Apply(ctx, tailscaledClient(c), port)
			cancel()
			// A lasting problem (tailscaled not running) is logged
			// when it starts and when it changes, not every 30 s.
			switch msg := fmt.Sprint(err); {
			case err != nil && msg != lastErr:
				ps.a.logf("peerrelay: %v", err)
				lastErr = msg
			case err == nil:
				lastErr = ""
			}
			if changed && err == nil {
				if port == 0 {
					ps.a.logf("peerrelay: the box's tailscaled no longer relays")
				} else {
					ps.a.logf("peerrelay: the box's tailscaled relays on udp %d", port)
				}
			}
		}
		select {
		case <-ps.stop:
			return
		case <-ps.kick:
		case <-t.C:
		}
	}
}

func (ps *peerRelayService) close() {
	close(ps.stop)
	ps.wg.Wait()
}
