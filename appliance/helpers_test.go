package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/testwait"
)

// startDev starts the appliance in-process in -dev mode on free ports,
// with state in a new temporary directory unless o names one, and closes
// it when the test ends.
func startDev(t *testing.T, o options) *app {
	t.Helper()
	o.dev = true
	if o.stateDir == "" {
		o.stateDir = t.TempDir()
	}
	if o.derpPort == 0 {
		o.derpPort = devbox.FreePort(t)
	}
	if o.stunPort == 0 {
		o.stunPort = devbox.FreePort(t)
	}
	if o.webuiAddr == "" {
		o.webuiAddr = "127.0.0.1:0"
	}
	a, err := start(o, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	return a
}

// save changes the configuration as the web UI does and waits until every
// service has applied it.
func (a *app) save(t *testing.T, modify func(*config.Config)) {
	t.Helper()
	c := a.store.Config()
	modify(&c)
	if err := a.store.Save(c); err != nil {
		t.Fatal(err)
	}
	a.awaitSettled(t)
}

// setSecret stores a secret and waits until every service has applied it.
func (a *app) setSecret(t *testing.T, name, value string) {
	t.Helper()
	if err := a.store.SetSecret(name, value); err != nil {
		t.Fatal(err)
	}
	a.awaitSettled(t)
}

func (a *app) awaitSettled(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.settled(ctx, a.store.Generation()); err != nil {
		t.Fatal(err)
	}
}

// awaitMap waits for a write of derpmap.json after every apply so far:
// the services that change the map's inputs (the ACME manager) ask for a
// write after they applied.
func (a *app) awaitMap(t *testing.T) {
	t.Helper()
	asked := time.Now()
	a.dmap.changed()
	testwait.For(t, 10*time.Second, "a new derpmap.json", func() error {
		if st := a.dmap.loop.state(); !st.At.Add(-st.Took).After(asked) {
			return errors.New("not written since")
		}
		return nil
	})
}
