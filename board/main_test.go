package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/flash"
	"github.com/homederp/homederp/board/gokrazyconfig"
	"github.com/homederp/homederp/board/internal/testimage"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"2GiB", 2 << 30}, {"1536MiB", 1536 << 20}, {"2G", 2 << 30}, {"1258291200", 1258291200},
	} {
		got, err := parseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q): got %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "2TB", "-1G", "xGiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): got nil error", in)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	want := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	for _, in := range []string{"2026-07-01T12:00:00Z", "2026-07-01T14:00:00+02:00", "1782907200"} {
		got, err := parseTimestamp(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTimestamp(%q): got %v, %v; want %v", in, got, err, want)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1782907200")
	if got, err := parseTimestamp(""); err != nil || !got.Equal(want) {
		t.Errorf("parseTimestamp with SOURCE_DATE_EPOCH: got %v, %v", got, err)
	}
	for _, in := range []string{"yesterday", "1970-01-01T00:00:00Z"} {
		if _, err := parseTimestamp(in); err == nil {
			t.Errorf("parseTimestamp(%q): got nil error", in)
		}
	}
}

// TestPassword follows gok's lookup and creates a password only when
// there is none, then keeps using it.
func TestPassword(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("SUDO_USER", "")
	cfg := &gokrazyconfig.Config{Hostname: "homederp"}
	pw, src, err := httpPassword(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(home, "gokrazy", "http-password.txt")
	if len(pw) != 20 || !strings.HasPrefix(src, saved) {
		t.Errorf("new password: got %q from %q", pw, src)
	}
	if fi, err := os.Stat(saved); err != nil || fi.Mode().Perm() != 0600 {
		t.Errorf("saved password file: %v, %v", fi, err)
	}
	again, _, err := httpPassword(cfg, "")
	if err != nil || again != pw {
		t.Errorf("second lookup: got %q, %v; want the saved %q", again, err, pw)
	}
	host := filepath.Join(home, "gokrazy", "hosts", "homederp", "http-password.txt")
	os.MkdirAll(filepath.Dir(host), 0700)
	os.WriteFile(host, []byte("per-host\n"), 0600)
	if got, _, _ := httpPassword(cfg, ""); got != "per-host" {
		t.Errorf("host-specific password: got %q", got)
	}
	cfg.Update = &gokrazyconfig.Update{HTTPPassword: "in-config"}
	if got, _, _ := httpPassword(cfg, ""); got != "in-config" {
		t.Errorf("Update.HTTPPassword: got %q", got)
	}
	explicit := filepath.Join(home, "pw")
	os.WriteFile(explicit, []byte("explicit\n"), 0600)
	if got, _, _ := httpPassword(cfg, explicit); got != "explicit" {
		t.Errorf("-password-file: got %q", got)
	}
	os.WriteFile(explicit, nil, 0600)
	if _, _, err := httpPassword(cfg, explicit); err == nil {
		t.Errorf("empty -password-file: got nil error")
	}
}

// TestFlashConfirm writes an image file to a loop device through the
// flash command's path: a "no" leaves the device untouched, a "yes"
// writes it with /perm grown to the device.
func TestFlashConfirm(t *testing.T) {
	const size = 1300 << 20
	dev := testimage.Loop(t, size)
	img := filepath.Join(t.TempDir(), "homederp.img")
	testimage.Write(t, img, 1200<<20, "homederp", "amd64")
	ctx := context.Background()

	var out bytes.Buffer
	err := flashTo(ctx, dev, &buildFlags{}, img, false, strings.NewReader("no\n"), &out, flash.Host)
	if err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("answering no: got %v", err)
	}
	if !strings.Contains(out.String(), "This will ERASE everything on:") || !strings.Contains(out.String(), dev) {
		t.Errorf("the question does not say what will be overwritten:\n%s", out.String())
	}
	head := make([]byte, 4096)
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	f.ReadAt(head, 0)
	f.Close()
	if !bytes.Equal(head, make([]byte, 4096)) {
		t.Fatalf("answering no changed %s", dev)
	}

	out.Reset()
	if err := flashTo(ctx, dev, &buildFlags{}, img, false, strings.NewReader("yes\n"), &out, flash.Host); err != nil {
		t.Fatalf("answering yes: %v\n%s", err, out.String())
	}
	f, err = os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, err := disk.ReadID(f)
	if err != nil {
		t.Fatalf("after flashing: %v", err)
	}
	if want := disk.NewID("homederp", "amd64"); id != want {
		t.Errorf("after flashing: disk identity %+v, want %+v", id, want)
	}
	l, _ := disk.NewLayout(size)
	if !strings.Contains(out.String(), "/perm is "+strconv.FormatInt(l.Part(disk.Perm).Size()>>20, 10)+" MiB") {
		t.Errorf("summary: %s", out.String())
	}
}
