package webui

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/testenv"
	"tailscale.com/tailcfg"
)

// Helpers of the browser test: a headless Chromium that stays on
// loopback, and a real `appliance -dev` process (internal/devbox) with
// its web UI.

func findChromium(t *testing.T) string {
	t.Helper()
	path := testenv.NeedCommand(t, "chromium")
	// Debian's /usr/bin/chromium is a shell wrapper; the binary itself
	// takes the flags directly.
	if p := "/usr/lib/chromium/chromium"; isExec(p) {
		return p
	}
	return path
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&0111 != 0
}

// newBrowser starts a headless Chromium that talks to loopback only.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	// A fresh profile, removed after Chromium has exited (t.TempDir
	// would race with Chromium's last writes).
	profile, err := os.MkdirTemp("", "hd-webui-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1100, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("no-proxy-server", true),
		// Nothing but loopback resolves, so the browser cannot wander off.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	quiet := func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "could not unmarshal event") {
			t.Logf("chromedp: %s", msg)
		}
	}
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithErrorf(quiet))
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the Chromium profile %s", profile)
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// waitText waits (bounded) until the element sel exists and its text
// contains want. It polls the DOM, so it also waits out a page load: an
// evaluation that fails because the page is navigating is tried again.
func waitText(sel, want string) chromedp.Action {
	return waitJS(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want),
		fmt.Sprintf("%s to say %q", sel, want))
}

func waitValue(sel, want string) chromedp.Action {
	return waitJS(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.value === %q; })()`, sel, want),
		fmt.Sprintf("%s to hold %q", sel, want))
}

func waitJS(js, what string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var lastErr error
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			var ok bool
			if lastErr = chromedp.Evaluate(js, &ok).Do(ctx); lastErr == nil && ok {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return fmt.Errorf("waited 60s for %s (last error: %v)", what, lastErr)
	})
}

// noSideways fails if the page is wider than a phone's screen.
func noSideways() chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var scroll, client int
		if err := chromedp.Evaluate(`document.documentElement.scrollWidth`, &scroll).Do(ctx); err != nil {
			return err
		}
		if err := chromedp.Evaluate(`document.documentElement.clientWidth`, &client).Do(ctx); err != nil {
			return err
		}
		if scroll > client {
			return fmt.Errorf("the page is %d px wide on a %d px phone screen", scroll, client)
		}
		return nil
	})
}

func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out := os.Getenv("HOMEDERP_TEST_OUTPUT"); out != "" {
		dir = filepath.Join(out, "webui-screenshots")
	}
	if err := os.MkdirAll(dir, 0755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// devBox is a running `appliance -dev` with its web UI on loopback.
type devBox struct {
	*devbox.Box
	url      string // e.g. "http://127.0.0.1:41234/"
	password string
}

// startDev runs the appliance with its web UI on a free loopback port and
// reads the web UI's address and password from its summary.
func startDev(t *testing.T, bin, stateDir string) *devBox {
	t.Helper()
	box := devbox.Start(t, bin, devbox.Options{StateDir: stateDir, WebUIAddr: "127.0.0.1:0"})
	url, password, ok := box.WebUI()
	if !ok {
		t.Fatalf("appliance -dev printed no web UI line:\n%s", box.Summary)
	}
	if fi, err := os.Stat(filepath.Join(stateDir, "webui-password")); err != nil {
		t.Errorf("webui-password: %v", err)
	} else if fi.Mode().Perm() != 0600 {
		t.Errorf("webui-password: mode %v, want 0600", fi.Mode().Perm())
	}
	return &devBox{Box: box, url: url, password: password}
}

// fetchServedMap gets /derpmap.json from the relay over TLS on loopback.
// The certificate is the self-signed one the map pins, so this skips the
// chain check; the pin is compared by the caller.
func fetchServedMap(t *testing.T, port int) *tailcfg.DERPMap {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "derp.homederp.test"},
	}}
	var lastErr error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/derpmap.json", port))
		if err != nil {
			lastErr = err
			continue
		}
		var m tailcfg.DERPMap
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return &m
	}
	t.Fatalf("the relay does not serve /derpmap.json on port %d: %v", port, lastErr)
	return nil
}

func mustLoad(t *testing.T, dir string) config.Config {
	t.Helper()
	c, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
