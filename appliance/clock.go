package main

import (
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/relay"
)

// A board without a real-time clock (every Raspberry Pi) comes back from a
// power cut in 1970 and learns the time from NTP, which needs the
// Internet line up and may take long after the LAN is. The relay does not
// need the time to serve a self-signed certificate it has stored: clients
// check it against the map's pin and their own clocks. So with the clock
// unset and that certificate on /perm, the relay starts at once and only
// what needs the time waits for it: DDNS (TLS to the DNS-over-TLS whoami
// servers and the provider's API). A first certificate, and the ACME and
// manual modes (whose certificates the relay checks against the clock),
// wait for the clock before anything starts, as they always did.

// waitForClockIfNeeded runs before the services start. If the box booted
// without a clock, it either waits for one, or marks the clock pending
// when the relay can serve c without it.
func (a *app) waitForClockIfNeeded(c config.Config) {
	if a.opts.waitClock == nil {
		return
	}
	host := hostname(c)
	if c.Cert.Mode == config.CertSelfSigned && a.storedSelfSigned(host) {
		a.logf("the clock is not set yet (it says %s): the relay serves its stored self-signed certificate for %s now; DDNS starts once NTP sets the clock", time.Now().UTC().Format(time.DateOnly), host)
		a.clockPending.Store(true)
		return
	}
	a.logf("the clock is not set yet: waiting for NTP before starting (certificate mode %s for %s)", c.Cert.Mode, host)
	a.opts.waitClock()
}

// clockless is c as DDNS applies it before the clock is set: without a
// provider.
func (a *app) clockless(c config.Config) config.Config {
	if a.clockPending.Load() {
		c.DDNS.Provider = config.ProviderNone
	}
	return c
}

// storedSelfSigned reports whether the self-signed certificate for host
// is stored. The zero time is an unset clock too: this loads it and never
// makes one.
func (a *app) storedSelfSigned(host string) bool {
	a.selfSignedMu.Lock()
	defer a.selfSignedMu.Unlock()
	_, err := relay.LoadOrCreateSelfSigned(a.relay.certDir(), host, time.Time{}, a.logf)
	return err == nil
}

// clockArrives waits for the clock, then lets DDNS apply the whole
// configuration.
func (a *app) clockArrives() {
	a.opts.waitClock()
	select {
	case <-a.closed:
		return
	default:
	}
	a.clockPending.Store(false)
	a.logf("the clock is set: DDNS starts")
	a.ddns.loop.again()
}
