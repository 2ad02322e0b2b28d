package webui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/portmap"
)

// TestBrowserPhone looks at every page at a phone's width (390 px) in a
// real headless Chromium, in English and in Chinese (a browser set to
// zh-CN), against the web UI on loopback with the status of a busy relay:
// each page is screenshotted (phone-*.png, zh-CN-phone-*.png), and its
// DOM must show no element sticking out of its container, no text, value
// or placeholder cut off, and nothing covering text (layoutProblemsJS).
// On the way it watches what the pages do while the box works: the DNS
// check's progress note and disabled button, the status page refreshing
// itself, and a map over the limit kept in the text box. What the pages
// must say comes from the catalogue of the browser's language.
func TestBrowserPhone(t *testing.T) {
	testenv.NeedLong(t)
	chromium := findChromium(t)
	t.Run("en", func(t *testing.T) { phoneStory(t, chromium, "en", english(t)) })
	t.Run("zh-CN", func(t *testing.T) { phoneStory(t, chromium, "zh-CN", chinese(t)) })
}

// phoneStory is TestBrowserPhone in one language; tr is its translator,
// for what the pages must say.
func phoneStory(t *testing.T, chromium, lang string, tr *tr) {
	// Parts of sentences the story waits for, which the catalogue has
	// only inside longer ones.
	part := map[string][2]string{
		"no region ID": {"has no RegionID", "没有 RegionID"},
		"resumed":      {"You were logged out before this was saved", "保存前你已退出登录"},
	}
	say := func(key string) string {
		if lang == "en" {
			return part[key][0]
		}
		return part[key][1]
	}
	prefix := "phone-"
	if lang != "en" {
		prefix = lang + "-phone-"
	}

	var mu sync.Mutex
	clients := 7
	checking, release := make(chan struct{}, 1), make(chan struct{})
	b := newBox(t, func(o *Options) {
		o.RelayStatus = func() relay.Status {
			mu.Lock()
			defer mu.Unlock()
			st := syntheticRelay(o.Now())
			st.ClientsConnected = clients
			st.Mesh = []relay.MeshStatus{{Peer: "derp2.example.com:12345/192.168.1.20", Error: "dial tcp 192.168.1.20:12345: connect: connection refused"}}
			return st
		}
		o.DDNSStatus = func() ddns.Status { return syntheticDDNS(o.Now()) }
		o.PortMapStatus = func() portmap.Status { return refusedStatus(o.Now()) }
		o.Traffic = func() []relay.TrafficSample { return dayOfTraffic(o.Now()) }
		o.Logs = NewLogRing(50)
		for i := range 30 {
			o.Logs.Logf("2026/05/01 12:00:%02d relay: a typical log line of moderate length, with a long token abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop %d", i, i)
		}
		o.CheckDNSCredential = func(ctx context.Context, c config.Config, secret string) error {
			checking <- struct{}{}
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}).configured()
	c := b.store.Config()
	c.PortMapping.Enabled = true
	if err := b.store.Save(c); err != nil {
		t.Fatal(err)
	}
	b.s.refresh = time.Second // the status page's own refresh, shortened

	shots := screenshotDir(t)
	ctx := newBrowser(t, chromium, lang)
	run := runner(t, ctx)
	look := func(name string) chromedp.Action {
		return chromedp.Tasks{screenshot(shots, prefix+name), layoutOK(name), inLanguage(lang)}
	}
	url := b.srv.URL + "/"
	// open loads a page and waits for the new document (newDocument).
	open := func(u string) chromedp.Action { return newDocument(chromedp.Navigate(u)) }
	run("a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))

	run("login",
		open(url),
		chromedp.WaitVisible(`#password`),
		look("01-login"),
		chromedp.SendKeys(`#password`, "not the password"),
		newDocument(chromedp.Submit(`#password`)),
		waitText(`p.error`, tr.S("login.wrong")),
		look("02-login-wrong"),
		chromedp.SendKeys(`#password`, testPassword),
		newDocument(chromedp.Submit(`#password`)),
		chromedp.WaitVisible(`#relay`),
	)
	run("status, with everything that needs attention",
		waitText(`#warnings`, tr.S("warn.mesh_peer", "Peer", "derp2.example.com:12345/192.168.1.20", "Err", "dial tcp 192.168.1.20:12345: connect: connection refused")),
		waitText(`#warnings`, tr.S("warn.open")),
		waitText(`#reach-forward`, tr.S("forward.to")),
		chromedp.WaitVisible(`#traffic svg`),
		look("03-status"),
	)
	run("the status page refreshes itself",
		chromedp.Evaluate(`window.stillHere = true`, nil),
		chromedp.ActionFunc(func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			clients = 4242
			return nil
		}),
		waitText(`#relay`, "4242"),
		waitJS(`window.stillHere === true`, "the same page (no reload)"),
	)
	run("setup",
		open(url+"setup"),
		chromedp.WaitVisible(`#name`),
		look("04-setup"),
	)
	run("a refused region, with the typed values",
		chromedp.SetValue(`#region-id`, "5"),
		chromedp.SetValue(`#region-code`, "Lab"),
		newDocument(chromedp.Click(`form[action="/setup/region#region"] button`)),
		waitText(`#region`, tr.M("setting.region_id_range", map[string]any{"ID": 5})),
		look("05-setup-error"),
	)
	// What a form shows while the box works is recorded by the page
	// itself, after ui.js has handled the submit: while a POST is pending
	// the browser may not answer the test's own probes.
	const recordBusy = `document.addEventListener("submit", ev => {
		const f = ev.target, p = f.querySelector("p.busy");
		sessionStorage.busy = JSON.stringify({disabled: f.querySelector("button").disabled, note: p ? p.textContent : ""});
	})`
	run("step 1 says what it does while the DNS provider checks the token",
		open(url+"setup"),
		chromedp.Click(`input[name="ddns.provider"][value="cloudflare"]`),
		chromedp.SendKeys(`#secret`, "cf-token-being-checked"),
		chromedp.Evaluate(recordBusy, nil),
		chromedp.Click(`form[action="/setup/name#name"] button`),
		chromedp.ActionFunc(func(ctx context.Context) error {
			select {
			case <-checking:
			case <-ctx.Done():
				return ctx.Err()
			}
			time.Sleep(time.Second) // a slow provider
			close(release)
			return nil
		}),
		waitText(`#ports p.flash`, strings.TrimSpace(tr.S("flash.name_accepted"))),
		waitJS(fmt.Sprintf(`(() => { const b = JSON.parse(sessionStorage.busy || "{}"); return b.disabled === true && b.note.includes(%q); })()`, tr.S("setup.name.busy_check")),
			"the button disabled and the progress note shown while the check ran"),
		look("06-setup-saved"),
	)
	run("the progress note, held on screen",
		open(url+"setup"),
		chromedp.Evaluate(`document.querySelector('form[action="/setup/tailnet#tailnet"]').addEventListener("submit", ev => ev.preventDefault())`, nil),
		chromedp.Click(`form[action="/setup/tailnet#tailnet"] button`),
		waitText(`#tailnet p.busy`, tr.S("setup.tailnet.busy")),
		chromedp.ScrollIntoView(`#tailnet p.busy`),
		look("07-setup-busy"),
	)
	run("the DERP map",
		open(url+"derpmap"),
		chromedp.WaitVisible(`#policy`),
		chromedp.Click(`#json summary`),
		look("08-derpmap"),
	)
	run("a map over the limit is not sent, and stays",
		chromedp.Evaluate(fmt.Sprintf(`document.getElementById("map").value = "{" + " ".repeat(%d) + "}"`, maxMap+10), nil),
		chromedp.Click(`form[action="/derpmap/check#check"] button`),
		waitJS(`!document.getElementById("map-too-big").hidden`, "the too-large note"),
		waitJS(fmt.Sprintf(`location.pathname === "/derpmap" && document.getElementById("map").value.length === %d`, maxMap+12), "the paste kept on the same page"),
	)
	run("a map check",
		chromedp.SetValue(`#map`, `{"Regions":{"900":{"RegionID":900,"RegionCode":"home","RegionName":"Home","Nodes":[{"Name":"900a","HostName":"derp.example.com","DERPPort":443}]}}}`),
		newDocument(chromedp.Click(`form[action="/derpmap/check#check"] button`)),
		waitText(`#report`, say("no region ID")),
		look("09-derpmap-check"),
	)
	run("a refused form",
		open(url+"setup"),
		chromedp.WaitVisible(`#ports`),
		chromedp.Evaluate(`document.querySelector('form[action="/setup/ports#ports"] input[name=csrf]').value = "stale"`, nil),
		newDocument(chromedp.Click(`form[action="/setup/ports#ports"] button`)),
		waitText(`p.error`, tr.S("message.csrf")),
		look("10-refused"),
	)
	run("a form after the login ended",
		open(url+"setup"),
		chromedp.WaitVisible(`#ports`),
		chromedp.ActionFunc(func(context.Context) error { b.clock.Advance(sessionIdle + time.Minute); return nil }),
		chromedp.SetValue(`#derp-port`, "4444"),
		newDocument(chromedp.Click(`form[action="/setup/ports#ports"] button`)),
		waitText(`.warning`, tr.S("login.logged_out")),
		look("11-login-resume"),
		chromedp.SendKeys(`#password`, testPassword),
		newDocument(chromedp.Submit(`#password`)),
		waitText(`main`, say("resumed")),
		waitValue(`#derp-port`, "4444"),
	)
	if got := b.store.Config().Relay.DERPPort; got != 12345 {
		t.Errorf("DERP port after the resumed form: got %d, want 12345 (not saved without a fresh look)", got)
	}
	if got := b.store.Config().Hostname; !strings.HasPrefix(got, "derp.example.com") {
		t.Errorf("hostname: %q", got)
	}
	t.Logf("screenshots in %s", shots)
}
