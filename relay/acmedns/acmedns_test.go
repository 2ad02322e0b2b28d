package acmedns

import (
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/cloudflare"
	"github.com/homederp/homederp/ddns/cloudflaretest"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/internal/bindtest"
	"github.com/homederp/homederp/internal/pebbletest"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/internal/testwait"
	"github.com/miekg/dns"
)

// bindTXT returns the TXT records BIND serves for name.
func bindTXT(t testing.TB, addr, name string) []string {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return []string{"query failed: " + err.Error()}
	}
	var out []string
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out
}

// rfc2136Env is a real BIND 9 that accepts TSIG-signed updates for the
// zone, and a Pebble that validates against it.
func rfc2136Env(t *testing.T, zone string, validity time.Duration) acmeEnv {
	testenv.NeedLong(t)
	bind := bindtest.Start(t, bindtest.Options{Zone: zone + ".", Records: []string{"derp 60 IN A 192.0.2.10"}})
	host := "derp." + zone
	return acmeEnv{
		host:     host,
		pebble:   pebbletest.Start(t, pebbletest.Options{DNSServer: bind.Addr.String(), Validity: validity, Logf: testLogf(t)}),
		dns:      &rfc2136.Provider{Server: bind.Addr.String(), KeyName: bind.KeyName, KeyAlgorithm: bind.KeyAlgorithm, Secret: bind.Secret, Timeout: 5 * time.Second},
		resolver: bind.Addr.String(),
		txt:      func() []string { return bindTXT(t, bind.Addr.String(), "_acme-challenge."+host) },
		validity: validity,
	}
}

// TestRFC2136 is the whole story with the challenge published in a real
// BIND 9 through RFC 2136 updates and validated by Pebble against it.
func TestRFC2136(t *testing.T) {
	runStory(t, rfc2136Env(t, "rfc.homederp.test", 30*time.Second), true)
}

// cloudflareEnv is the Cloudflare fake, its DNS side serving what the API
// holds, and a Pebble that validates against that DNS side.
func cloudflareEnv(t *testing.T, zone string, validity time.Duration) (acmeEnv, *cloudflaretest.Server) {
	testenv.NeedLong(t)
	fake := cloudflaretest.New(t, cloudflaretest.Options{})
	fake.AddZone(zone)
	fake.AddRecord(zone, "derp", "A", "192.0.2.10", 60, false)
	dnsAddr := fake.StartDNS(t, cloudflaretest.DNSOptions{})
	token := fake.AddToken(cloudflaretest.Token{Zones: []string{zone}})
	host := "derp." + zone
	return acmeEnv{
		host:     host,
		pebble:   pebbletest.Start(t, pebbletest.Options{DNSServer: dnsAddr.String(), Validity: validity, Logf: testLogf(t)}),
		dns:      cloudflare.New(token, apiclient.Options{HTTP: fake.Client(), Logf: testLogf(t), MaxRetries: 1, MaxWait: time.Second}),
		resolver: dnsAddr.String(),
		txt: func() []string {
			var out []string
			for _, r := range fake.Records(zone, "_acme-challenge.derp", "TXT") {
				out = append(out, r.Content)
			}
			return out
		},
		validity: validity,
	}, fake
}

// TestCloudflare is the story with the challenge published through
// libdns/cloudflare (behind ddns's rate-limited client) at the fake
// Cloudflare API, served by the fake's DNS side, validated by Pebble.
func TestCloudflare(t *testing.T) {
	env, fake := cloudflareEnv(t, "cf.homederp.test", 30*time.Second)
	runStory(t, env, false)
	routes := fake.RequestsByRoute()
	t.Logf("Cloudflare API requests: %d in all, by route %v", fake.Requests(), routes)
	if n := fake.Requests(); n > 20 {
		t.Errorf("%d Cloudflare API requests for two certificates; want at most 20", n)
	}
	if recs := fake.Records("cf.homederp.test", "derp", "A"); len(recs) != 1 || recs[0].Content != "192.0.2.10" {
		t.Errorf("the A record: %+v, want it untouched", recs)
	}
}

// TestClockWait checks that nothing is asked of the CA while the clock
// says 1970, and that the status says why.
func TestClockWait(t *testing.T) {
	env := rfc2136Env(t, "clock.homederp.test", 0)
	saved := clockPoll
	clockPoll = 50 * time.Millisecond
	t.Cleanup(func() { clockPoll = saved })
	dir := t.TempDir()
	fallback := selfSigned(t, dir, env.host)
	var fake atomicTime
	fake.Store(time.Unix(0, 0))
	cfg := env.config(t, dir, fallback, nil)
	cfg.Now = fake.Load
	m, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	testwait.For(t, 5*time.Second, "the clock wait in the status", func() error {
		if !m.Status().WaitingForClock {
			return errString("not waiting")
		}
		return nil
	})
	if info := m.CertInfo(); !strings.Contains(info.Error, "synchronized clock") {
		t.Errorf("CertInfo: %q, want it to say it waits for the clock", info.Error)
	}
	time.Sleep(300 * time.Millisecond) // nothing must happen; there is no condition to poll
	if n := env.pebble.Requests(); n != 0 {
		t.Errorf("%d requests to the CA with the clock in 1970; want none", n)
	}
	fake.Store(time.Now())
	testwait.For(t, 60*time.Second, "a trusted certificate once the clock is right", func() error {
		if !m.Status().Trusted {
			return errString(m.CertInfo().Error)
		}
		return nil
	})
}

func TestDirectoryURL(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"", "https://acme-v02.api.letsencrypt.org/directory", true},
		{"production", "https://acme-v02.api.letsencrypt.org/directory", true},
		{"staging", "https://acme-staging-v02.api.letsencrypt.org/directory", true},
		{"https://ca.example.com/dir", "https://ca.example.com/dir", true},
		{"http://ca.example.com/dir", "", false},
		{"https://", "", false},
		{"Let's Encrypt", "", false},
	} {
		got, err := DirectoryURL(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("DirectoryURL(%q): got %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestStartRefusesIncompleteConfig(t *testing.T) {
	dir := t.TempDir()
	fallback := selfSigned(t, dir, "derp.example.com")
	good := Config{Hostname: "derp.example.com", Dir: dir, DNS: &rfc2136.Provider{}, Fallback: fallback}
	for _, tt := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"no hostname", func(c *Config) { c.Hostname = "" }, "no hostname"},
		{"no DNS provider", func(c *Config) { c.DNS = nil }, "no DNS provider"},
		{"no fallback", func(c *Config) { c.Fallback = nil }, "no fallback"},
		{"no directory", func(c *Config) { c.Dir = "" }, "no storage directory"},
		{"bad CA", func(c *Config) { c.CA = "ftp://ca" }, "neither"},
	} {
		c := good
		tt.modify(&c)
		m, err := Start(c)
		if err == nil {
			m.Close()
			t.Errorf("%s: Start succeeded", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}
