package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func valid() Config {
	c := Default()
	c.Hostname = "derp.example.com"
	return c
}

func TestDefaultsAreTheHomeLine(t *testing.T) {
	c := Default()
	if got, want := c.Relay.DERPPort, 12345; got != want {
		t.Errorf("DERP port: got %d, want %d", got, want)
	}
	if got, want := c.Relay.STUNPort, 3478; got != want {
		t.Errorf("STUN port: got %d, want %d", got, want)
	}
	if diff := cmp.Diff(Region{ID: 900, Code: "home", Name: "Home", NodeName: "900a"}, c.Region); diff != "" {
		t.Errorf("region (-want +got):\n%s", diff)
	}
	if got, want := c.Cert.Mode, CertSelfSigned; got != want {
		t.Errorf("cert mode: got %q, want %q", got, want)
	}
	if !c.PortMapping.Enabled {
		t.Error("port mapping: got off, want on by default")
	}
	if err := valid().Validate(); err != nil {
		t.Errorf("defaults with a hostname do not validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(*Config)
		path   string // field path of the expected error
		msg    string // substring of its message
	}{
		{"no hostname", func(c *Config) { c.Hostname = "" }, "hostname", "needs a hostname"},
		{"hostname with space", func(c *Config) { c.Hostname = "derp example.com" }, "hostname", "not a valid DNS name"},
		{"hostname with underscore", func(c *Config) { c.Hostname = "derp_1.example.com" }, "hostname", "not a valid DNS name"},
		{"label starting with hyphen", func(c *Config) { c.Hostname = "-derp.example.com" }, "hostname", "not a valid DNS name"},
		{"label too long", func(c *Config) { c.Hostname = strings.Repeat("a", 64) + ".example.com" }, "hostname", "not a valid DNS name"},
		{"unspecified IP", func(c *Config) { c.Hostname = "0.0.0.0" }, "hostname", "not an address clients can dial"},
		{"region below 900", func(c *Config) { c.Region.ID = 1 }, "region.id", "outside 900–999"},
		{"region above 999", func(c *Config) { c.Region.ID = 1000 }, "region.id", "outside 900–999"},
		{"region code uppercase", func(c *Config) { c.Region.Code = "Home" }, "region.code", "lowercase"},
		{"region code empty", func(c *Config) { c.Region.Code = "" }, "region.code", "short code"},
		{"region name empty", func(c *Config) { c.Region.Name = " " }, "region.name", "needs a name"},
		{"node name with space", func(c *Config) { c.Region.NodeName = "900 a" }, "region.node_name", "letters"},
		{"DERP port zero", func(c *Config) { c.Relay.DERPPort = 0 }, "relay.derp_port", "not a port number"},
		{"DERP port too big", func(c *Config) { c.Relay.DERPPort = 70000 }, "relay.derp_port", "not a port number"},
		{"STUN port negative", func(c *Config) { c.Relay.STUNPort = -1 }, "relay.stun_port", "not a port number"},
		{"DERP on 80", func(c *Config) { c.Relay.DERPPort = 80 }, "relay.derp_port", "web interface"},
		{"DERP on gokrazy's port", func(c *Config) { c.Relay.DERPPort = 8080 }, "relay.derp_port", "gokrazy's own web interface"},
		{"port clash", func(c *Config) { c.Relay.STUNPort = 12345 }, "relay.stun_port", "both use port 12345"},
		{"unknown cert mode", func(c *Config) { c.Cert.Mode = "letsencrypt" }, "cert.mode", `unknown certificate mode "letsencrypt"`},
		{"acme without provider", func(c *Config) { c.Cert.Mode = CertACMEDNS }, "cert.mode", "needs a DNS provider"},
		{"bad ACME CA", func(c *Config) { c.Cert.ACMECA = "http://ca" }, "cert.acme_ca", "https://"},
		{"bad e-mail", func(c *Config) { c.Cert.ACMEEmail = "me at example" }, "cert.acme_email", "not an e-mail"},
		{"unknown provider", func(c *Config) { c.DDNS.Provider = "route53" }, "ddns.provider", `unknown DNS provider "route53"`},
		{"ddns for an IP", func(c *Config) { c.Hostname = "192.0.2.1"; c.DDNS.Provider = ProviderCloudflare }, "ddns.provider", "not an IP"},
		{"ddns without families", func(c *Config) { c.DDNS.Provider = ProviderCloudflare; c.DDNS.IPv4, c.DDNS.IPv6 = false, false }, "ddns.ipv4", "neither"},
		{"ddns interval too short", func(c *Config) { c.DDNS.Provider = ProviderCloudflare; c.DDNS.Interval = Duration(1e9) }, "ddns.interval", "outside"},
		{"rfc2136 without server", func(c *Config) {
			c.DDNS.Provider = ProviderRFC2136
			c.DDNS.RFC2136 = RFC2136{KeyName: "k.", KeyAlgorithm: "hmac-sha256."}
		}, "ddns.rfc2136.server", "host:port"},
		{"rfc2136 bad algorithm", func(c *Config) {
			c.DDNS.Provider = ProviderRFC2136
			c.DDNS.RFC2136 = RFC2136{Server: "ns:53", KeyName: "k.", KeyAlgorithm: "md5"}
		}, "ddns.rfc2136.key_algorithm", "not a supported TSIG algorithm"},
		{"both verify modes", func(c *Config) { c.Relay.VerifyClients = true; c.Relay.VerifyClientURL = "https://hs/verify" }, "relay.verify_client_url", "either"},
		{"verify URL not http", func(c *Config) { c.Relay.VerifyClientURL = "ftp://x" }, "relay.verify_client_url", "not an http"},
		{"bad mesh entry", func(c *Config) { c.Relay.MeshWith = []string{"a/b/c"} }, "relay.mesh_with[0]", "host[:port]"},
		{"negative rate", func(c *Config) { c.Relay.PerClientBytesPerSec = -1 }, "relay.per_client_bytes_per_sec", "negative"},
		{"tiny burst", func(c *Config) { c.Relay.PerClientBytesPerSec = 1000; c.Relay.PerClientBurstBytes = 100 }, "relay.per_client_burst_bytes", "65536"},
		{"bad control URL", func(c *Config) { c.Tailnet.ControlURL = "headscale.example.com" }, "tailnet.control_url", "not a URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			err := c.Validate()
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Validate: got %v, want an Errors value", err)
			}
			msgs := errs.For(tt.path)
			if len(msgs) == 0 {
				t.Fatalf("Validate: no error for %s; got %v", tt.path, err)
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tt.msg) {
				t.Errorf("Validate: %s: got %q, want a message containing %q", tt.path, msgs, tt.msg)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Region.ID = 5
	c.Relay.DERPPort = 0
	c.Cert.Mode = "bogus"
	var errs Errors
	if !errors.As(c.Validate(), &errs) {
		t.Fatal("Validate: want Errors")
	}
	for _, path := range []string{"hostname", "region.id", "relay.derp_port", "cert.mode"} {
		if len(errs.For(path)) == 0 {
			t.Errorf("Validate: no error for %s in %v", path, errs)
		}
	}
}

func TestValidAddresses(t *testing.T) {
	for _, h := range []string{"derp.example.com", "derp.example.com.", "localhost", "192.0.2.7", "2001:db8::1", "xn--bcher-kva.example"} {
		c := valid()
		c.Hostname = h
		if err := c.Validate(); err != nil {
			t.Errorf("hostname %q: got %v, want valid", h, err)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name, doc, wantErr string
	}{
		{"missing version", `{"hostname":"a.example"}`, `missing "version"`},
		{"newer version", `{"version":99}`, "newer than this software"},
		{"unknown field", `{"version":1,"hostnme":"x"}`, "unknown field"},
		{"trailing data", `{"version":1} {}`, "trailing data"},
		{"not JSON", `hostname=derp`, "invalid character"},
		{"empty", ``, "EOF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q): got %v, want error containing %q", tt.doc, err, tt.wantErr)
			}
		})
	}

	// A minimal document keeps the defaults for everything it omits.
	c, err := Parse([]byte(`{"version":1,"hostname":"derp.example.com","region":{"id":901}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := valid()
	want.Region = Region{ID: 901, Code: "home", Name: "Home", NodeName: "900a"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), s.Config()); diff != "" {
		t.Errorf("fresh store (-want +got):\n%s", diff)
	}
	c := valid()
	c.Region.ID = 942
	c.Relay.MeshWith = []string{"derp2.example.com:12345"}
	c.DDNS.Provider = ProviderRFC2136
	c.DDNS.RFC2136 = RFC2136{Server: "192.0.2.53:53", KeyName: "homederp.", KeyAlgorithm: "hmac-sha256."}
	if err := s.Save(c); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0600); got != want {
		t.Errorf("config.json mode: got %v, want %v", got, want)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.LoadError(); err != nil {
		t.Fatalf("LoadError: %v", err)
	}
	if diff := cmp.Diff(c, s2.Config()); diff != "" {
		t.Errorf("reopened store (-want +got):\n%s", diff)
	}
}

func TestStoreRefusesInvalid(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	good := valid()
	if err := s.Save(good); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, FileName))
	changes, stop := s.Watch()
	defer stop()
	gen := s.Generation()
	bad := good
	bad.Region.ID = 5
	if err := s.Save(bad); err == nil {
		t.Fatal("Save(invalid): got nil error")
	}
	after, _ := os.ReadFile(filepath.Join(dir, FileName))
	if string(before) != string(after) {
		t.Errorf("Save(invalid) changed the file:\n%s", after)
	}
	if diff := cmp.Diff(good, s.Config()); diff != "" {
		t.Errorf("Save(invalid) changed the running config (-want +got):\n%s", diff)
	}
	select {
	case <-changes:
		t.Error("Save(invalid) told a watcher of a change")
	default:
	}
	if got := s.Generation(); got != gen {
		t.Errorf("Save(invalid): generation %d, want %d as before", got, gen)
	}
}

func TestStoreWatch(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	changes, stop := s.Watch()
	_, gen := s.Current()
	if gen != 1 {
		t.Errorf("generation of a fresh store: got %d, want 1", gen)
	}
	// A burst of changes, with nobody reading: the saver never blocks
	// and one value waits.
	for _, id := range []int{901, 902} {
		c := valid()
		c.Region.ID = id
		if err := s.Save(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetSecret(SecretCloudflareToken, "tok"); err != nil {
		t.Fatal(err)
	}
	if got := len(changes); got != 1 {
		t.Errorf("values waiting after a burst: got %d, want 1", got)
	}
	<-changes
	c, gen := s.Current()
	if c.Region.ID != 902 || gen != 4 {
		t.Errorf("Current after 3 changes: region %d, generation %d; want 902, 4", c.Region.ID, gen)
	}
	stop()
	if err := s.Save(valid()); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 || s.Generation() != 5 {
		t.Errorf("after stop: %d values waiting, generation %d; want 0, 5", len(changes), s.Generation())
	}
}

func TestStoreKeepsBrokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	broken := []byte(`{"version":1,"hostname":"derp.example.com",` /* cut off */)
	if err := os.WriteFile(path, broken, 0600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	var pe *ParseError
	if !errors.As(s.LoadError(), &pe) {
		t.Fatalf("LoadError: got %v, want a *ParseError", s.LoadError())
	}
	if diff := cmp.Diff(Default(), s.Config()); diff != "" {
		t.Errorf("running config (-want +got):\n%s", diff)
	}
	if got, _ := os.ReadFile(path); string(got) != string(broken) {
		t.Errorf("Open rewrote the broken file: got %q", got)
	}

	// Saving a real configuration keeps the broken file next to it.
	if err := s.Save(valid()); err != nil {
		t.Fatal(err)
	}
	if s.LoadError() != nil {
		t.Errorf("LoadError after Save: %v", s.LoadError())
	}
	aside, _ := filepath.Glob(path + ".broken-*")
	if len(aside) != 1 {
		t.Fatalf("broken file moved aside: got %v, want one file", aside)
	}
	if got, _ := os.ReadFile(aside[0]); string(got) != string(broken) {
		t.Errorf("moved-aside file: got %q, want %q", got, broken)
	}
}

func TestStoredInvalidConfigIsReported(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(`{"version":1,"hostname":"derp.example.com","region":{"id":5}}`), 0600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LoadError(); err == nil || !strings.Contains(err.Error(), "region.id") {
		t.Errorf("LoadError: got %v, want the region.id problem", err)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.HasSecret(SecretCloudflareToken) {
		t.Error("HasSecret on a fresh store: got true")
	}
	if err := s.SetSecret(SecretCloudflareToken, "  tok-123\n"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Secret(SecretCloudflareToken)
	if err != nil || got != "tok-123" {
		t.Errorf("Secret: got %q, %v; want %q", got, err, "tok-123")
	}
	fi, err := os.Stat(filepath.Join(dir, "secret-"+SecretCloudflareToken))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0600); got != want {
		t.Errorf("secret file mode: got %v, want %v", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, FileName)); strings.Contains(string(b), "tok-123") {
		t.Error("the secret leaked into config.json")
	}
	if err := s.SetSecret(SecretCloudflareToken, ""); err != nil {
		t.Fatal(err)
	}
	if s.HasSecret(SecretCloudflareToken) {
		t.Error("HasSecret after clearing: got true")
	}
	if err := s.SetSecret("../escape", "x"); err == nil {
		t.Error("SetSecret(../escape): got nil error")
	}
}
