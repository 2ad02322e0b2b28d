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

// newBrowser starts a headless Chromium that talks to loopback only, set
// to the language lang (e.g. "zh-CN"), which it also asks pages for.
func newBrowser(t *testing.T, path, lang string) context.Context {
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
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang),
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

// screenshot saves the page as dir/name.png.
func screenshot(dir, name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		// A form submit may still be swapping the document when the
		// awaited text shows up; a screenshot then sees a page of width
		// 0. Wait for a laid-out, loaded page and retry a few times.
		ready := waitJS(`document.readyState === "complete" && document.documentElement.clientWidth > 0`, "a loaded page to screenshot")
		var png []byte
		var err error
		for try := 0; try < 5; try++ {
			if err = ready.Do(ctx); err != nil {
				return err
			}
			if err = chromedp.FullScreenshot(&png, 100).Do(ctx); err == nil {
				return os.WriteFile(filepath.Join(dir, name+".png"), png, 0644)
			}
			time.Sleep(200 * time.Millisecond)
		}
		return fmt.Errorf("screenshot %s: %w", name, err)
	})
}

// newDocument runs action (a form submit, a navigation) and waits until
// the browser shows the document it leads to, not the one before, whose
// elements may look the same: acting on those fails with "Could not find
// node with given id" once the new document replaces them.
func newDocument(action chromedp.Action) chromedp.Action {
	return chromedp.Tasks{
		chromedp.Evaluate(`window.previousPage = true`, nil),
		action,
		waitJS(`window.previousPage !== true && document.readyState === "complete"`, "the next page"),
	}
}

// runner returns a function that runs browser actions as one step of a
// story, failing the test with where the browser is and what it shows.
func runner(t *testing.T, ctx context.Context) func(what string, actions ...chromedp.Action) {
	return func(what string, actions ...chromedp.Action) {
		t.Helper()
		start := time.Now()
		defer func() { t.Logf("%s: %v", what, time.Since(start).Round(10*time.Millisecond)) }()
		if err := chromedp.Run(ctx, actions...); err != nil {
			var loc, body string
			chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &body))
			t.Fatalf("%s: %v\nat %s:\n%.3000s", what, err, loc, body)
		}
	}
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

// layoutProblemsJS lists, for the page as laid out now, every element
// that sticks out of its container, cuts its own content off (only code
// in <pre> may scroll sideways), shows a value or placeholder wider than
// its field, or covers text (a copy button over its code).
const layoutProblemsJS = `(() => {
  const out = [];
  const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (typeof e.className === "string" && e.className.trim() ? "." + e.className.trim().split(/\s+/).join(".") : "");
  const path = e => { const p = []; for (; e && e !== document.body && p.length < 4; e = e.parentElement) p.unshift(name(e)); return p.join(" > "); };
  const px = v => parseFloat(v) || 0;
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth) out.push("the page is " + doc.scrollWidth + " px wide on a " + doc.clientWidth + " px screen");
  const canvas = document.createElement("canvas").getContext("2d");
  for (const el of document.body.querySelectorAll("*")) {
    const cs = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    if (cs.display === "none" || cs.visibility === "hidden" || r.width === 0 && r.height === 0) continue;
    const p = el.parentElement;
    if (p && p !== document.body && getComputedStyle(p).overflowX === "visible") {
      const pr = p.getBoundingClientRect(), pcs = getComputedStyle(p);
      const left = pr.left + px(pcs.borderLeftWidth), right = pr.right - px(pcs.borderRightWidth);
      if (r.right > right + 0.5 || r.left < left - 0.5) {
        out.push(path(el) + " sticks out of its container by " + Math.round(Math.max(r.right - right, left - r.left)) + " px");
      }
    }
    if (el.tagName !== "PRE" && el.tagName !== "INPUT" && el.tagName !== "TEXTAREA" && cs.overflowX !== "visible" && el.scrollWidth > el.clientWidth + 1) {
      out.push(path(el) + " cuts off its content (" + el.scrollWidth + " px in " + el.clientWidth + ")");
    }
    if (el.tagName === "INPUT" && !["radio", "checkbox", "hidden", "file"].includes(el.type)) {
      const text = el.value ? (el.type === "password" ? "" : el.value) : el.placeholder;
      canvas.font = cs.font;
      const need = canvas.measureText(text).width, room = el.clientWidth - px(cs.paddingLeft) - px(cs.paddingRight);
      if (need > room + 1) out.push(path(el) + " shows " + JSON.stringify(text) + " cut off (" + Math.round(need) + " px in " + Math.round(room) + ")");
    }
  }
  // Text that runs out of its element (a long word that does not wrap).
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || el.closest("pre, textarea, select, option")) continue;
    let box = el;
    while (box !== document.body && getComputedStyle(box).display.startsWith("inline")) box = box.parentElement;
    const br = box.getBoundingClientRect(), bcs = getComputedStyle(box);
    const right = br.right - px(bcs.borderRightWidth) - px(bcs.paddingRight) + 1;
    const range = document.createRange();
    range.selectNodeContents(n);
    for (const tr of range.getClientRects()) {
      if (tr.width > 0 && tr.right > right) {
        out.push(path(box) + ": the text " + JSON.stringify(n.textContent.trim().slice(0, 40)) + " runs " + Math.round(tr.right - right) + " px out of it");
        break;
      }
    }
  }
  for (const b of document.querySelectorAll("button[data-copy]")) {
    const target = document.getElementById(b.dataset.copy);
    const br = b.getBoundingClientRect();
    if (!target || br.width === 0) continue;
    const range = document.createRange();
    range.selectNodeContents(target);
    for (const tr of range.getClientRects()) {
      if (tr.left < br.right && tr.right > br.left && tr.top < br.bottom && tr.bottom > br.top) {
        out.push(path(b) + " covers the text of #" + target.id);
        break;
      }
    }
  }
  return out;
})()`

// layoutOK fails with every layout problem of the page (layoutProblemsJS).
func layoutOK(page string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var problems []string
		if err := chromedp.Evaluate(layoutProblemsJS, &problems).Do(ctx); err != nil {
			return err
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s at phone width:\n  %s", page, strings.Join(problems, "\n  "))
		}
		return nil
	})
}

// inLanguage checks that the page is in lang: it says so, and the
// browser's own Accept-Language led there (no switch was used).
func inLanguage(lang string) chromedp.Action {
	return waitJS(fmt.Sprintf(`document.documentElement.lang === %q`, lang), "a page in "+lang)
}
