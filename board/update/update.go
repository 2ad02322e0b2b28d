// Package update pushes a new image to a running gokrazy box over its
// update API, with github.com/gokrazy/updater, the way gok does:
//
//  1. root: the new squashfs goes to the inactive root partition;
//  2. boot: the new FAT goes to partition 1;
//  3. mbr: the first 446 bytes of LBA 0 (boot code and disk signature;
//     the partition entries stay);
//  4. switch: the box rewrites root= in cmdline.txt and the loader entry
//     to the partition it just received;
//  5. reboot (kexec on amd64), then wait until the box reports the new
//     build timestamp.
//
// /perm (partition 4) is never written. Each transfer is verified against
// the hash the box computes over what it wrote.
package update

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gokrazy/updater"
)

// Image is what an update pushes.
type Image struct {
	Timestamp string                        // build timestamp the box will report, e.g. "2026-07-01T12:34:56Z"
	GOARCH    string                        // e.g. "arm64": the box must run this architecture
	PermUUID  string                        // PARTUUID of the image's partition 4, e.g. "60c24cc1-f3f9-427a-8199-4f9f2cab0004"
	Root      func() (io.ReadCloser, error) // the squashfs
	Boot      func(io.Writer) error         // writes the FAT
	MBR       []byte                        // 446 bytes
}

// Options say where and how to push.
type Options struct {
	// BaseURL is gokrazy's web interface with credentials, e.g.
	// "http://gokrazy:secret@homederp.lan:8080/".
	BaseURL string
	Client  *http.Client
	// Wait bounds the wait for the box to come back (gok: 5 minutes).
	Wait time.Duration
	Logf func(format string, args ...any)
}

// Timing is how long each step took.
type Timing struct {
	Root time.Duration // the root file system, until the box confirmed it
	// RootSync is the part of Root after the last byte was sent: the box
	// writing out (fsync) and hashing what it received.
	RootSync time.Duration
	Push     time.Duration // root + boot + MBR + switch
	Reboot   time.Duration // until the reboot request returned: the box stopped its services
	Back     time.Duration // until the new build reported in
	RootSize int64
	Total    time.Duration
}

// Push updates the box at opts.BaseURL to img and waits for it to run it.
func Push(ctx context.Context, img Image, opts Options) (Timing, error) {
	var t Timing
	start := time.Now()
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.Wait == 0 {
		opts.Wait = 5 * time.Minute
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if len(img.MBR) != 446 {
		return t, fmt.Errorf("MBR boot code is %d bytes, want 446", len(img.MBR))
	}
	if err := checkBox(ctx, img, opts); err != nil {
		return t, err
	}
	target, err := updater.NewTarget(ctx, opts.BaseURL, opts.Client)
	if err != nil {
		return t, fmt.Errorf("asking %s for its update features: %w", redact(opts.BaseURL), err)
	}
	if !target.Supports(updater.ProtocolFeaturePARTUUID) || !target.Supports("gpt") {
		return t, fmt.Errorf("%s does not boot by GPT PARTUUID; it was not installed by this tool or gok", redact(opts.BaseURL))
	}

	// Root first: writing the inactive partition cannot break the running
	// system.
	rootStart := time.Now()
	rc, err := img.Root()
	if err != nil {
		return t, err
	}
	cr := &countReader{r: rc}
	err = target.StreamTo(ctx, "root", cr)
	rc.Close()
	if err != nil {
		return t, fmt.Errorf("updating the root file system: %w", err)
	}
	t.RootSize = cr.n
	t.Root = time.Since(rootStart)
	if !cr.eof.IsZero() {
		t.RootSync = time.Since(cr.eof)
	}
	logf("root file system written (%d MiB)", cr.n>>20)

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(img.Boot(pw)) }()
	err = target.StreamTo(ctx, "boot", pr)
	pr.Close()
	if err != nil {
		return t, fmt.Errorf("updating the boot file system: %w", err)
	}
	logf("boot file system written")

	if err := target.StreamTo(ctx, "mbr", bytes.NewReader(img.MBR)); err != nil {
		return t, fmt.Errorf("updating the MBR: %w", err)
	}
	if err := target.Switch(ctx); err != nil {
		return t, fmt.Errorf("switching to the new root partition: %w", err)
	}
	t.Push = time.Since(start)
	logf("switched to the new root partition; rebooting")

	rebootStart := time.Now()
	if err := target.Reboot(ctx); err != nil {
		return t, fmt.Errorf("rebooting: %w", err)
	}
	t.Reboot = time.Since(rebootStart)

	backStart := time.Now()
	if err := WaitForBuild(ctx, opts.BaseURL, opts.Client, img.Timestamp, opts.Wait); err != nil {
		return t, err
	}
	t.Back = time.Since(backStart)
	t.Total = time.Since(start)
	logf("the box runs build %s", img.Timestamp)
	return t, nil
}

// Status is the part of gokrazy's status JSON (GET / with Accept:
// application/json) this tool reads.
type Status struct {
	BuildTimestamp string
	Hostname       string
	PermDev        string // e.g. "/dev/sda4"
	PermUUID       string // e.g. "60c24cc1-f3f9-427a-8199-4f9f2cab0004": derived from the root= the box booted with
	Kernel         string // e.g. "Linux 7.1.2 (x86_64)"
	Model          string // e.g. "Raspberry Pi 4 Model B Rev 1.4"
	SBOMHash       string
}

var kernelArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

// checkBox refuses an update the box could not boot: another
// architecture, or a disk whose partition GUIDs are not the image's (the
// new cmdline.txt names the root by partition 1's GUID, derived from the
// hostname; a box installed under another hostname would not find it).
func checkBox(ctx context.Context, img Image, opts Options) error {
	st, err := GetStatus(ctx, opts.BaseURL, opts.Client)
	if err != nil {
		return fmt.Errorf("asking the box for its status: %w", err)
	}
	if want := kernelArch[img.GOARCH]; want != "" && st.Kernel != "" && !strings.Contains(st.Kernel, "("+want+")") {
		return fmt.Errorf("the box runs %q (%s); this image is for %s", st.Kernel, st.Model, img.GOARCH)
	}
	if img.PermUUID != "" && st.PermUUID != "" && !strings.EqualFold(st.PermUUID, img.PermUUID) {
		return fmt.Errorf("the box's disk is %s, this image expects %s: it was installed with another hostname (or not by this tool or gok); the update would not boot", st.PermUUID, img.PermUUID)
	}
	return nil
}

// GetStatus fetches gokrazy's status.
func GetStatus(ctx context.Context, baseURL string, client *http.Client) (*Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", redact(baseURL), resp.Status)
	}
	var st Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("GET %s: %w", redact(baseURL), err)
	}
	return &st, nil
}

// WaitForBuild polls the status every second until it reports the build
// timestamp want, for at most wait.
func WaitForBuild(ctx context.Context, baseURL string, client *http.Client, want string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := errors.New("no answer yet")
	for {
		reqCtx, reqCancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := GetStatus(reqCtx, baseURL, client)
		reqCancel()
		switch {
		case err != nil:
			last = err
		case st.BuildTimestamp == want:
			return nil
		default:
			last = fmt.Errorf("the box reports build %s", st.BuildTimestamp)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting %v for build %s: %v", wait, want, last)
		case <-tick.C:
		}
	}
}

// redact hides the password in a URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}

// countReader counts what is read and notes when the end was reached.
type countReader struct {
	r   io.Reader
	n   int64
	eof time.Time
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF && c.eof.IsZero() {
		c.eof = time.Now()
	}
	return n, err
}
