package webui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/cloudflare"
	"github.com/homederp/homederp/ddns/cloudflaretest"
)

// TestConcurrentSavesSurvive: while step 1 waits for the DNS provider to
// check a token, other steps are saved from another tab; every form that
// was told "saved" stays saved, step 1 included. Then many saves of
// different steps race each other, with the same outcome.
func TestConcurrentSavesSurvive(t *testing.T) {
	checking := make(chan struct{})
	release := make(chan struct{})
	b := newBox(t, func(o *Options) {
		o.CheckDNSCredential = func(ctx context.Context, c config.Config, secret string) error {
			close(checking)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}
	}).configured().login()
	other := newBox(t, nil)
	other.s, other.srv, other.store, other.c = b.s, b.srv, b.store, newClient()
	other.login()

	nameTok := b.token("/setup", "/setup/name")
	type answer struct {
		resp *http.Response
		body string
	}
	nameDone := make(chan answer)
	go func() {
		resp, body := b.post("/setup/name", url.Values{"csrf": {nameTok}, "hostname": {"relay.example.com"}, "ddns.provider": {"cloudflare"},
			"ddns.ipv4": {"on"}, "ddns.interval": {"3m"}, "secret": {"cf-GOOD-token-1234"}})
		nameDone <- answer{resp, body}
	}()
	<-checking
	resp, body := other.submit("/setup", "/setup/ports", url.Values{"relay.derp_port": {"4444"}, "relay.stun_port": {"4445"}})
	mustStatus(t, "ports from the other tab", resp, body, http.StatusSeeOther)
	resp, body = other.submit("/setup", "/setup/region", url.Values{"region.id": {"942"}, "region.code": {"lab"}, "region.name": {"Lab"}, "region.node_name": {"942a"}})
	mustStatus(t, "region from the other tab", resp, body, http.StatusSeeOther)
	close(release)
	a := <-nameDone
	mustStatus(t, "name, after its check", a.resp, a.body, http.StatusSeeOther)
	c := b.store.Config()
	if c.Hostname != "relay.example.com" || c.DDNS.Provider != "cloudflare" || c.Relay.DERPPort != 4444 || c.Relay.STUNPort != 4445 || c.Region.ID != 942 {
		t.Errorf("after saves in two tabs: hostname %q, provider %q, ports %d/%d, region %d; want every save kept",
			c.Hostname, c.DDNS.Provider, c.Relay.DERPPort, c.Relay.STUNPort, c.Region.ID)
	}

	// Many at once: each tab saves its own step with a value of its own.
	const rounds = 8
	forms := []struct {
		action string
		form   func(i int) url.Values
	}{
		{"/setup/ports", func(i int) url.Values {
			return url.Values{"relay.derp_port": {fmt.Sprint(5000 + i)}, "relay.stun_port": {"3478"}}
		}},
		{"/setup/region", func(i int) url.Values {
			return url.Values{"region.id": {fmt.Sprint(950 + i)}, "region.code": {"lab"}, "region.name": {"Lab"}, "region.node_name": {"n"}}
		}},
		{"/setup/cert", func(i int) url.Values {
			return url.Values{"cert.mode": {"self-signed"}, "cert.acme_email": {fmt.Sprintf("me%d@example.com", i)}}
		}},
		{"/setup/verify", func(i int) url.Values {
			return url.Values{"relay.verify": {"url"}, "relay.verify_client_url": {fmt.Sprintf("https://hs%d.example.com/verify", i)}}
		}},
	}
	var wg sync.WaitGroup
	for _, f := range forms {
		tab := newBox(t, nil)
		tab.s, tab.srv, tab.store, tab.c = b.s, b.srv, b.store, newClient()
		tab.login()
		tok := tab.token("/setup", f.action)
		wg.Go(func() {
			for i := range rounds {
				form := f.form(i)
				form.Set("csrf", tok)
				if resp, body := tab.post(f.action, form); resp.StatusCode != http.StatusSeeOther {
					t.Errorf("POST %s round %d: %s\n%.500s", f.action, i, resp.Status, body)
				}
			}
		})
	}
	wg.Wait()
	c = b.store.Config()
	last := rounds - 1
	if c.Relay.DERPPort != 5000+last || c.Region.ID != 950+last || c.Cert.ACMEEmail != fmt.Sprintf("me%d@example.com", last) ||
		c.Relay.VerifyClientURL != fmt.Sprintf("https://hs%d.example.com/verify", last) || c.Hostname != "relay.example.com" {
		t.Errorf("after racing saves: port %d, region %d, email %q, verify URL %q, hostname %q; want each step's last save",
			c.Relay.DERPPort, c.Region.ID, c.Cert.ACMEEmail, c.Relay.VerifyClientURL, c.Hostname)
	}
}

// TestFailedSaveShowsSavedValues: a refused form shows what was typed in
// its fields, but everything else on the page (the router's
// port-forward) shows what is saved.
func TestFailedSaveShowsSavedValues(t *testing.T) {
	b := newBox(t, nil).configured().login()
	resp, body := b.submit("/setup", "/setup/ports", url.Values{"relay.derp_port": {"0"}, "relay.stun_port": {"70000"}})
	mustStatus(t, "ports 0 and 70000", resp, body, http.StatusBadRequest)
	contains(t, "ports page", body, `name="relay.derp_port" value="0"`, `name="relay.stun_port" value="70000"`,
		`<td data-label="Outside port">12345</td>`, `<td data-label="Outside port">3478</td>`)
	for _, bad := range []string{`<td data-label="Outside port">0</td>`, `<td data-label="Outside port">70000</td>`} {
		if strings.Contains(body, bad) {
			t.Errorf("the port-forward table tells the user to forward a refused port: %s", bad)
		}
	}
}

// TestHostnameIsNormalised: the name is stored lowercase without a
// trailing dot, however it was typed.
func TestHostnameIsNormalised(t *testing.T) {
	b := newBox(t, nil).login()
	resp, body := b.submit("/setup", "/setup/name", url.Values{"hostname": {"  Derp.Example.COM. "}, "ddns.provider": {""}, "ddns.interval": {"2m"}})
	mustStatus(t, "save name", resp, body, http.StatusSeeOther)
	if got := b.store.Config().Hostname; got != "derp.example.com" {
		t.Errorf("saved hostname: got %q, want derp.example.com", got)
	}
}

// TestDNSCheckSaysWhatFailed checks tokens with the real check against
// the Cloudflare fake: the page tells a provider that cannot be reached
// from a token it does not know and from one that may not do the job.
func TestDNSCheckSaysWhatFailed(t *testing.T) {
	fake := cloudflaretest.New(t, cloudflaretest.Options{})
	fake.AddZone("example.com")
	fake.AddZone("example.org")
	good := fake.AddToken(cloudflaretest.Token{})
	otherZone := fake.AddToken(cloudflaretest.Token{Zones: []string{"example.org"}})
	b := newBox(t, func(o *Options) {
		o.CheckDNSCredential = func(ctx context.Context, c config.Config, secret string) error {
			p := cloudflare.New(secret, apiclient.Options{HTTP: fake.Client(), MaxRetries: 1})
			return ddns.ClassifyCheck(p.Check(ctx, c.Hostname))
		}
	}).login()
	for _, tt := range []struct {
		name, token string
		before      func()
		want        string
	}{
		{"unknown token", strings.Repeat("Z", 40), nil, "The DNS provider does not accept this credential"},
		{"token for another zone", otherZone, nil, "The DNS provider accepts the credential but refuses what the relay needs it for"},
		{"Cloudflare unreachable", good, fake.Close, "The box could not reach the DNS provider to check this"},
	} {
		if tt.before != nil {
			tt.before()
		}
		start := time.Now()
		resp, body := b.submit("/setup", "/setup/name", url.Values{"hostname": {"derp.example.com"}, "ddns.provider": {"cloudflare"},
			"ddns.ipv4": {"on"}, "ddns.interval": {"2m"}, "secret": {tt.token}})
		mustStatus(t, tt.name, resp, body, http.StatusBadRequest)
		contains(t, tt.name, body, tt.want, "Nothing was saved")
		if strings.Contains(body, tt.token) {
			t.Errorf("%s: the token is sent back", tt.name)
		}
		t.Logf("%s: answered in %v", tt.name, time.Since(start).Round(time.Millisecond))
	}
	if b.store.HasSecret(config.SecretCloudflareToken) || b.store.Config().Hostname != "" {
		t.Error("a refused check saved something")
	}
}
