package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/update"
)

func updateCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("update", flag.ContinueOnError)
	var bf buildFlags
	bf.register(fs)
	host := fs.String("host", "", "The box to update: host name or address, optionally with :port. Defaults to Update.Hostname, else Hostname, from config.json, at Update.HTTPPort.")
	wait := fs.Duration("wait", 5*time.Minute, "How long to wait for the box to come back with the new build.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	b, err := bf.build(ctx)
	if err != nil {
		return err
	}
	defer b.cleanup()
	base, err := b.baseURL(*host)
	if err != nil {
		return err
	}
	log.Printf("updating %s to build %s", (&url.URL{Scheme: "http", Host: mustHost(base)}).String(), b.Timestamp)
	t, err := push(ctx, b, base, *wait)
	if err != nil {
		return err
	}
	fmt.Printf("updated to %s: pushed %d MiB in %v, rebooted and back in %v (total %v); /perm untouched\n",
		b.Timestamp, t.RootSize>>20, t.Push.Round(100*time.Millisecond), (t.Reboot + t.Back).Round(100*time.Millisecond), t.Total.Round(100*time.Millisecond))
	return nil
}

// baseURL is gokrazy's web interface on the box, with credentials.
func (b *built) baseURL(host string) (string, error) {
	cfg := b.cfg
	if host == "" {
		host = cfg.Hostname
		if cfg.Update != nil && cfg.Update.Hostname != "" {
			host = cfg.Update.Hostname
		}
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, cfg.HTTPPort())
	}
	u := &url.URL{Scheme: "http", Host: host, Path: "/", User: url.UserPassword("gokrazy", b.password)}
	return u.String(), nil
}

func mustHost(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return "?"
	}
	return u.Host
}

// push sends the built image to the box at base.
func push(ctx context.Context, b *built, base string, wait time.Duration) (update.Timing, error) {
	client := &http.Client{
		// Each request is bounded; a stuck box must not hang the update.
		Timeout: 10 * time.Minute,
	}
	return update.Push(ctx, update.Image{
		Timestamp: b.Timestamp,
		Root:      func() (io.ReadCloser, error) { return b.OpenRoot() },
		Boot:      b.WriteBoot,
		MBR:       b.MBRBootCode(),
		GOARCH:    b.GOARCH,
		PermUUID:  strings.ToLower(disk.PartGUID(b.Hostname, disk.Perm).String()),
	}, update.Options{BaseURL: base, Client: client, Wait: wait, Logf: log.Printf})
}
