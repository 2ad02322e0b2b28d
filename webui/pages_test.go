package webui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/portmap"
	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/client/local"
	"tailscale.com/tailcfg"
)

func syntheticRelay(now time.Time) relay.Status {
	return relay.Status{
		Hostname: "derp.example.com", DERPAddrs: []string{"[::]:12345"}, STUNAddrs: []string{"[::]:3478"},
		ClientsConnected: 7, MeshPeers: 1, BytesReceived: 123_456_789, BytesSent: 98_765_432, Refused: 42,
		STUNRequests: 1234, STUNErrors: 5,
		CertMode: "self-signed", CertNotAfter: now.Add(10 * 24 * time.Hour), CertIssuer: "homederp self-signed",
		VerifyMode: "tailscaled", TailscaledState: "Running",
	}
}

func syntheticDDNS(now time.Time) ddns.Status {
	return ddns.Status{
		Enabled: true, Provider: "cloudflare", Hostname: "derp.example.com",
		PublicIPv4: netip.MustParseAddr("100.72.1.2"), PublicIPv6: netip.MustParseAddr("2001:db8::7"),
		ServedA: []netip.Addr{netip.MustParseAddr("198.51.100.7")}, ServedAAAA: []netip.Addr{netip.MustParseAddr("2001:db8::7")},
		LastCheck: now.Add(-3 * time.Minute), LastChange: now.Add(-50 * time.Hour),
		Warnings: []string{"The ddns service's own warning."},
		History:  []ddns.Event{{Time: now.Add(-50 * time.Hour), Kind: "change", Message: "A derp.example.com: 198.51.100.6 → 198.51.100.7"}},
	}
}

func TestStatusPage(t *testing.T) {
	var b *testBox
	logs := NewLogRing(100)
	for i := 0; i < 60; i++ {
		logs.Logf("line %d", i)
	}
	b = newBox(t, func(o *Options) {
		o.RelayStatus = func() relay.Status { return syntheticRelay(o.Now()) }
		o.DDNSStatus = func() ddns.Status { return syntheticDDNS(o.Now()) }
		o.Logs = logs
		o.Tailscaled = func(config.Config) *local.Client {
			return &local.Client{Socket: filepath.Join(t.TempDir(), "gone.sock"), UseSocketOnly: true}
		}
	}).configured()
	c := b.store.Config()
	c.DDNS.Provider = config.ProviderCloudflare
	c.Relay.VerifyClients = true
	if err := b.store.Save(c); err != nil {
		t.Fatal(err)
	}
	b.login()

	resp, body := b.get("/")
	mustStatus(t, "GET /", resp, body, http.StatusOK)
	contains(t, "status page", body,
		"<b>7</b> + 1 mesh peers", "123.5 MB in · 98.8 MB out", "42 clients", "<b>1234</b> requests",
		"expires in 10 days", "The ddns service&#39;s own warning.",
		"no public IPv4 address of its own (CGNAT",
		"DNS does not serve this line&#39;s address for derp.example.com (it serves 198.51.100.7, 2001:db8::7; the line has 100.72.1.2, 2001:db8::7)",
		"certificate expires in 10 days",
		"verify-clients is on but the box&#39;s tailscaled cannot be reached",
		"line 59", "3 min ago", "A derp.example.com: 198.51.100.6 → 198.51.100.7",
	)
	if strings.Contains(body, "line 19\n") {
		t.Error("the status page shows more than the last lines of the log")
	}

	resp, body = b.get("/", "Accept", "application/json")
	mustStatus(t, "GET / JSON", resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: %q", ct)
	}
	var v statusView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.Relay == nil || v.Relay.ClientsConnected != 7 || v.DDNS == nil || v.DNS.Match != "no" || len(v.Logs) != statusLogLines || !v.Configured {
		t.Errorf("status JSON: %+v", v)
	}
	if len(v.Warnings) < 5 {
		t.Errorf("warnings: got %q", v.Warnings)
	}
}

func TestStatusWarnings(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	cfg := config.Default()
	cfg.Hostname = "derp.example.com"
	cfg.Relay.VerifyClients = true
	running := tailnetView{Reachable: true, State: "Running", Peers: 3}
	for _, tt := range []struct {
		name   string
		modify func(*config.Config, *relay.Status, *ddns.Status, *tailnetView)
		want   string // substring of one warning; "" wants none
	}{
		{"all fine", func(*config.Config, *relay.Status, *ddns.Status, *tailnetView) {}, ""},
		{"proxied record", func(_ *config.Config, _ *relay.Status, d *ddns.Status, _ *tailnetView) {
			d.Proxied = true
			d.ServedA = []netip.Addr{netip.MustParseAddr("104.16.0.1")}
		}, "Cloudflare proxy addresses"},
		{"CGNAT", func(_ *config.Config, _ *relay.Status, d *ddns.Status, _ *tailnetView) { d.CGNAT = true }, "CGNAT"},
		{"no IPv4", func(_ *config.Config, _ *relay.Status, d *ddns.Status, _ *tailnetView) { d.NoIPv4 = true }, "\"IPv4\": \"none\""},
		{"DNS stale", func(_ *config.Config, _ *relay.Status, d *ddns.Status, _ *tailnetView) {
			d.ServedA = []netip.Addr{netip.MustParseAddr("198.51.100.99")}
		}, "DNS does not serve"},
		{"ddns error", func(_ *config.Config, _ *relay.Status, d *ddns.Status, _ *tailnetView) {
			d.LastError = "Cloudflare: 9109 invalid token"
		}, "Dynamic DNS: Cloudflare: 9109"},
		{"cert expired", func(_ *config.Config, r *relay.Status, _ *ddns.Status, _ *tailnetView) {
			r.CertNotAfter = now.Add(-time.Hour)
		}, "expired on 2026-04-30"},
		{"cert error", func(_ *config.Config, r *relay.Status, _ *ddns.Status, _ *tailnetView) {
			r.CertError = "manual pair does not match"
		}, "Certificate: manual pair"},
		{"tailscaled logged out", func(c *config.Config, _ *relay.Status, _ *ddns.Status, tn *tailnetView) {
			c.Relay.VerifyClients = true
			tn.State = "NeedsLogin"
		}, "tailscaled is NeedsLogin (logged out?)"},
		{"relay says why verify fails", func(c *config.Config, r *relay.Status, _ *ddns.Status, tn *tailnetView) {
			c.Relay.VerifyClients = true
			tn.State = "NeedsLogin"
			r.VerifyProblem = "tailscaled is logged out; every client is refused"
		}, "Client verification: tailscaled is logged out"},
		{"no peers", func(c *config.Config, _ *relay.Status, _ *ddns.Status, tn *tailnetView) {
			c.Relay.VerifyClients = true
			tn.Peers = 0
		}, "ACLs must let it see every client"},
		{"logged out without verify", func(c *config.Config, _ *relay.Status, _ *ddns.Status, tn *tailnetView) {
			c.Relay.VerifyClients = false
			tn.State = "NeedsLogin"
		}, "tailscaled is logged out, so verify-clients cannot be on"},
		{"open to anyone", func(c *config.Config, _ *relay.Status, _ *ddns.Status, _ *tailnetView) { c.Relay.VerifyClients = false }, "client verification is off"},
		{"public address unknown", func(_ *config.Config, _ *relay.Status, d *ddns.Status, _ *tailnetView) {
			d.PublicIPv4, d.LastCheck = netip.Addr{}, now.Add(-time.Minute)
		}, "found no public address"},
		{"public address not looked up yet", func(_ *config.Config, _ *relay.Status, d *ddns.Status, _ *tailnetView) { d.PublicIPv4 = netip.Addr{} }, "has not found the line's public address yet"},
		{"no DNS provider", func(_ *config.Config, _ *relay.Status, d *ddns.Status, _ *tailnetView) { d.Enabled = false }, "does not look up the line's public address"},
		{"mesh peer down", func(_ *config.Config, r *relay.Status, _ *ddns.Status, _ *tailnetView) {
			r.Mesh = []relay.MeshStatus{{Peer: "derp2.example.com:12345", Connected: true}, {Peer: "derp3.example.com:12345", Error: "connection refused"}}
		}, "Mesh peer derp3.example.com:12345 is not connected (connection refused)"},
		{"trusted certificate pending", func(c *config.Config, r *relay.Status, _ *ddns.Status, _ *tailnetView) {
			c.Cert.Mode = config.CertACMEDNS
			r.CertPinned = true
		}, "paste the new map then"},
		{"trusted certificate served", func(c *config.Config, _ *relay.Status, _ *ddns.Status, _ *tailnetView) {
			c.Cert.Mode = config.CertACMEDNS
		}, ""},
		{"mesh", func(_ *config.Config, r *relay.Status, _ *ddns.Status, _ *tailnetView) { r.MeshError = "no mesh key" }, "Mesh: no mesh key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, tn := cfg, running
			r := relay.Status{CertNotAfter: now.Add(300 * 24 * time.Hour)}
			d := ddns.Status{
				Enabled: true, PublicIPv4: netip.MustParseAddr("198.51.100.7"),
				ServedA: []netip.Addr{netip.MustParseAddr("198.51.100.7")},
			}
			tt.modify(&c, &r, &d, &tn)
			dv := dnsSummary(c, &d)
			ws := warnings(english(t), c, &r, &d, tn, dv, now)
			if tt.want == "" {
				if len(ws) > 0 {
					t.Errorf("warnings: got %q, want none", ws)
				}
				return
			}
			for _, w := range ws {
				if strings.Contains(w, tt.want) {
					return
				}
			}
			t.Errorf("warnings: got %q, want one containing %q", ws, tt.want)
		})
	}
}

func TestStatusWithoutServices(t *testing.T) {
	b := newBox(t, nil).login()
	resp, body := b.get("/")
	mustStatus(t, "GET /", resp, body, http.StatusOK)
	contains(t, "status page", body, "not set up yet", "Relay status is not available", "Start setup")
}

func TestDERPMapPage(t *testing.T) {
	b := newBox(t, nil).login()
	resp, body := b.get("/derpmap")
	mustStatus(t, "GET /derpmap before setup", resp, body, http.StatusOK)
	contains(t, "map page", body, "no hostname yet")
	resp, _ = b.get("/derpmap/derpmap.json")
	mustStatus(t, "download before setup", resp, "", http.StatusConflict)

	b.configured()
	pin := spec.Pin([]byte("test certificate"))
	_, body = b.get("/derpmap")
	contains(t, "map page", body,
		"&#34;derpMap&#34;: {", "&#34;CertName&#34;: &#34;"+pin, "&#34;DERPPort&#34;: 12345",
		"https://derp.example.com:12345/derpmap.json",
		"self-signed certificate fails that check",
		"regionid: 900", "certname: "+pin,
		"- /etc/headscale/derp-homederp.yaml",
		`data-copy="policy"`, `href="/derpmap/policy.hujson"`, `href="/derpmap/derpmap.yaml"`,
	)
	if regexp.MustCompile(`(?i)ipv[46]&#34;|ipv[46]:`).MatchString(body) {
		t.Error("the map page carries an address field for a dynamic address")
	}
	_, body = b.get("/derpmap?omit=1")
	contains(t, "map page, omit", body, "&#34;OmitDefaultRegions&#34;: true", "omitdefaultregions: true", "urls: []", `href="/derpmap/derpmap.yaml?omit=1"`)

	// The page follows the running config.
	c := b.store.Config()
	c.Region.ID, c.Relay.DERPPort = 944, 4443
	if err := b.store.Save(c); err != nil {
		t.Fatal(err)
	}
	_, body = b.get("/derpmap", "Accept", "application/json")
	var v mapView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	var m tailcfg.DERPMap
	if err := json.Unmarshal([]byte(v.JSON), &m); err != nil {
		t.Fatal(err)
	}
	if r := m.Regions[944]; r == nil || r.Nodes[0].DERPPort != 4443 || v.URL != "https://derp.example.com:4443/derpmap.json" || v.URLTrusted {
		t.Errorf("map JSON after a config change: %+v, %s", v, v.JSON)
	}

	// A trusted certificate: no pin, and derp.urls works.
	c.Cert.Mode = config.CertManual
	if err := b.store.Save(c); err != nil {
		t.Fatal(err)
	}
	b.s.o.MapOptions = func() derpmap.Options { return derpmap.Options{} }
	_, body = b.get("/derpmap")
	if strings.Contains(body, "fails that check") || strings.Contains(body, "CertName") {
		t.Errorf("trusted certificate: the page still talks about pinning")
	}
}

func TestDERPMapDownloads(t *testing.T) {
	b := newBox(t, nil).configured().login()
	for _, tt := range []struct {
		path, ctype string
		parse       func([]byte) (*tailcfg.DERPMap, error)
	}{
		{"/derpmap/derpmap.json", "application/json", func(b []byte) (*tailcfg.DERPMap, error) {
			var m tailcfg.DERPMap
			return &m, json.Unmarshal(b, &m)
		}},
		{"/derpmap/derpmap.yaml", "application/yaml", func(b []byte) (*tailcfg.DERPMap, error) { return derpmap.ParseYAML(bytes.NewReader(b)) }},
		{"/derpmap/policy.hujson", "text/plain; charset=utf-8", func(b []byte) (*tailcfg.DERPMap, error) {
			rep := derpmap.Check(b, nil)
			if !rep.OK() {
				return nil, errFindings(rep)
			}
			var m struct{ DERPMap *tailcfg.DERPMap }
			return m.DERPMap, json.Unmarshal(append(append([]byte("{"), bytes.TrimSuffix(bytes.TrimSpace(b), []byte(","))...), '}'), &m)
		}},
	} {
		resp, body := b.get(tt.path + "?omit=1")
		mustStatus(t, tt.path, resp, body, http.StatusOK)
		if got := resp.Header.Get("Content-Type"); got != tt.ctype {
			t.Errorf("%s: Content-Type %q, want %q", tt.path, got, tt.ctype)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
			t.Errorf("%s: Content-Disposition %q", tt.path, cd)
		}
		m, err := tt.parse([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.path, err, body)
		}
		if r := m.Regions[900]; r == nil || r.Nodes[0].RegionID != 900 || r.Nodes[0].DERPPort != 12345 || !m.OmitDefaultRegions {
			t.Errorf("%s: got %+v", tt.path, m)
		}
	}
}

type errFindings derpmap.Report

func (e errFindings) Error() string { return e.Findings[0].Msg }

func TestMapCheckForm(t *testing.T) {
	b := newBox(t, nil).configured().login()
	pasted := `{"Regions":{"900":{"RegionID":900,"RegionCode":"home","RegionName":"Home","Nodes":[{"Name":"900a","HostName":"derp.example.com","DERPPort":443}]}}}`
	resp, body := b.submit("/derpmap", "/derpmap/check", url.Values{"map": {pasted}})
	mustStatus(t, "check", resp, body, http.StatusOK)
	contains(t, "check result", body, `id="report"`, "has no RegionID", "DERP port 443", "but this box serves DERP on port 12345",
		"&#34;Name&#34;:&#34;900a&#34;") // the pasted map stays in the box
	tok := b.token("/derpmap", "/derpmap/check")
	resp, body = b.post("/derpmap/check", url.Values{"csrf": {tok}, "map": {"regions:\n  900:\n    RegionID: 900\n"}}, "Accept", "application/json")
	mustStatus(t, "check JSON", resp, body, http.StatusOK)
	var rep derpmap.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !strings.Contains(rep.Format, "YAML") {
		t.Errorf("check JSON: %+v", rep)
	}
}

func TestMetrics(t *testing.T) {
	b := newBox(t, func(o *Options) {
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "# TYPE homederp_test gauge\nhomederp_test 1\n")
		})
	}).configured()
	resp, _ := b.get("/metrics")
	if resp.StatusCode == http.StatusOK {
		t.Error("/metrics without a password: got 200")
	}
	req, _ := http.NewRequest("GET", b.srv.URL+"/metrics", nil)
	req.SetBasicAuth("gokrazy", testPassword)
	resp, body := b.do(req)
	mustStatus(t, "/metrics with Basic auth", resp, body, http.StatusOK)
	contains(t, "/metrics", body, "homederp_test 1")

	nb := newBox(t, nil).login()
	resp, _ = nb.get("/metrics")
	mustStatus(t, "/metrics without a handler", resp, "", http.StatusNotFound)
}

// TestTemplateErrorIsClean500: a page that fails halfway through
// rendering answers a plain 500, not half a page with status 200.
func TestTemplateErrorIsClean500(t *testing.T) {
	b := newBox(t, nil).configured().login()
	b.s.langs[0].tmpl["status"] = template.Must(template.New("x").Parse(`{{define "layout"}}<html>half a page{{.Body.NoSuchField}}{{end}}`))
	resp, body := b.get("/")
	mustStatus(t, "broken template", resp, body, http.StatusInternalServerError)
	if strings.Contains(body, "half a page") {
		t.Errorf("partial page sent: %q", body)
	}
}

func TestStatic(t *testing.T) {
	b := newBox(t, nil)
	for p, ctype := range map[string]string{"/static/style.css": "text/css", "/static/ui.js": "text/javascript", "/static/favicon.svg": "image/svg+xml"} {
		resp, body := b.get(p)
		mustStatus(t, p, resp, body, http.StatusOK)
		if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, ctype) {
			t.Errorf("%s: Content-Type %q, want %q", p, got, ctype)
		}
	}
}

// TestPageWeight keeps the setup and status pages light for a phone on a
// weak Wi-Fi: HTML plus the CSS and JS they load.
func TestPageWeight(t *testing.T) {
	b := newBox(t, func(o *Options) {
		o.RelayStatus = func() relay.Status { return syntheticRelay(o.Now()) }
		o.DDNSStatus = func() ddns.Status { return syntheticDDNS(o.Now()) }
		o.PortMapStatus = func() portmap.Status { return mappedStatus(o.Now()) }
		o.Traffic = func() []relay.TrafficSample { return dayOfTraffic(o.Now()) }
		o.Logs = NewLogRing(200)
		for i := 0; i < 200; i++ {
			o.Logs.Logf("2026/05/01 12:00:00 relay: a typical log line of moderate length, number %d", i)
		}
	}).configured().login()
	_, css := b.get("/static/style.css")
	_, js := b.get("/static/ui.js")
	const budget = 48 << 10
	var report []string
	for _, p := range []string{"/", "/setup", "/derpmap"} {
		_, html := b.get(p)
		total := len(html) + len(css) + len(js)
		report = append(report, p+": "+kb(len(html))+" HTML + "+kb(len(css))+" CSS + "+kb(len(js))+" JS = "+kb(total))
		if total > budget {
			t.Errorf("%s weighs %s, over the %s budget", p, kb(total), kb(budget))
		}
	}
	t.Logf("page weight (uncompressed):\n  %s", strings.Join(report, "\n  "))
	if dir := os.Getenv("HOMEDERP_TEST_OUTPUT"); dir != "" {
		os.MkdirAll(filepath.Join(dir, "webui"), 0755)
		os.WriteFile(filepath.Join(dir, "webui", "page-weight.txt"), []byte(strings.Join(report, "\n")+"\n"), 0644)
	}
}

func kb(n int) string { return fmt.Sprintf("%.1f KB", float64(n)/1024) }
