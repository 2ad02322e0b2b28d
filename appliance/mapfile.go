package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/internal/statefile"
)

// mapRetry is how soon a failed write of derpmap.json (a full disk) is
// tried again.
const mapRetry = 30 * time.Second

// mapWriter keeps a copy of the DERP map in the state directory, where a
// newcomer (or a script) can pick it up. The map depends on the saved
// configuration and on what the services do with it (the certificate the
// relay serves, whether the line has public IPv4), so the writer follows
// those services: the relay asks for a write after each apply, ddns and
// the ACME manager when their part changes. Its own loop coalesces a
// burst of such requests into one write of the newest map, and a render
// made before a change can never land on disk after one made after it.
type mapWriter struct {
	a    *app
	loop *applyLoop
}

func (w *mapWriter) path() string { return filepath.Join(w.a.opts.stateDir, "derpmap.json") }

// changed asks for a new write.
func (w *mapWriter) changed() { w.loop.again() }

func (w *mapWriter) apply(c config.Config) error {
	b, err := w.a.renderMap(c)
	if err != nil {
		return fmt.Errorf("rendering the DERP map: %w", err)
	}
	if err := statefile.Write(w.path(), b, 0644); err != nil {
		return fmt.Errorf("writing the DERP map: %w", err)
	}
	return nil
}

// derpMapJSON renders the home-region map from the saved configuration
// and what the services serve now; the relay serves it at /derpmap.json.
func (a *app) derpMapJSON() ([]byte, error) { return a.renderMap(a.store.Config()) }

func (a *app) renderMap(c config.Config) ([]byte, error) {
	c.Hostname = hostname(c)
	return derpmap.JSON(derpmap.Map(c, a.mapOptions()))
}

// mapOptions are the DERP map options from every service: the relay's
// certificate pin and ddns's "no public IPv4". They read published
// snapshots only.
func (a *app) mapOptions() derpmap.Options {
	o := a.relay.mapOptions()
	o.NoIPv4 = a.ddns.Status().NoIPv4
	return o
}
