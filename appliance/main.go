// The appliance program is homederp's one process on the box: it runs the
// DERP/STUN relay (and, as they land, ddns and the web UI) from the
// configuration in its state directory, and stops them cleanly on SIGTERM.
//
// On gokrazy (the /gokrazy directory exists) state lives in
// /perm/homederp. With -dev everything runs on loopback with state in
// ./homederp-state, for trying homederp on a laptop.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gokrazy/gokrazy"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/webui"
)

var (
	dev       = flag.Bool("dev", false, "Run on loopback only, with state in -state-dir (default ./homederp-state), for trying homederp without a box.")
	stateDir  = flag.String("state-dir", "", "Directory holding the configuration, keys and certificates. Defaults to /perm/homederp on gokrazy and ./homederp-state with -dev.")
	derpPort  = flag.Int("derp-port", 0, "With -dev: the DERP port of a new dev configuration (default 12345). An existing configuration keeps its port.")
	stunPort  = flag.Int("stun-port", 0, "With -dev: the STUN port of a new dev configuration (default 3478).")
	webuiAddr = flag.String("webui-addr", "", "With -dev: the loopback address of the web UI (default 127.0.0.1:8080; port 0 picks a free one). On the box the web UI listens on port 80 of every private address.")
	pwFile    = flag.String("password-file", "", "File holding the web UI password (user gokrazy). The default is gokrazy's /perm/gokr-pw.txt or /etc/gokr-pw.txt; -dev generates one. For running homederp on a machine that is not gokrazy.")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func onGokrazy() bool {
	_, err := os.Stat("/gokrazy")
	return err == nil
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Keep the recent log for the web UI's status page.
	logs := webui.NewLogRing(200)
	log.SetOutput(io.MultiWriter(os.Stderr, logs))

	opts := options{dev: *dev, derpPort: *derpPort, stunPort: *stunPort, webuiAddr: *webuiAddr, passwordFile: *pwFile, logs: logs}
	switch {
	case *stateDir != "":
		opts.stateDir = *stateDir
	case *dev:
		opts.stateDir = "homederp-state"
	case onGokrazy():
		opts.stateDir = "/perm/homederp"
	default:
		return errors.New("not on gokrazy: pass -dev to try homederp on this machine, or -state-dir")
	}
	abs, err := filepath.Abs(opts.stateDir)
	if err != nil {
		return err
	}
	opts.stateDir = abs

	if onGokrazy() && !*dev && !relay.ClockSet(time.Now()) {
		// A board without a real-time clock boots in 1970 and waits for
		// NTP; start decides what can run before that.
		opts.waitClock = gokrazy.WaitForClock
	}

	app, err := start(opts, log.Printf)
	if err != nil {
		return err
	}
	go trimMemory(ctx, trimEvery)
	if *dev {
		fmt.Print(app.summary())
	}
	select {
	case <-ctx.Done():
		log.Printf("shutting down")
	case err := <-app.errc:
		app.close()
		return err
	}
	app.close()
	return nil
}
