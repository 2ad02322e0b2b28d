package main

import (
	"context"
	"crypto/tls"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/authdns"
	"github.com/homederp/homederp/ddns/cloudflaretest"
	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/detect"
)

// TestDDNSService runs the appliance in-process with its ddns service
// pointed at loopback stand-ins for the Internet and Cloudflare: saving a
// provider and token starts the updater, the record appears, a line
// without public IPv4 turns the DERP map's IPv4 to "none", and removing the
// token stops it.
func TestDDNSService(t *testing.T) {
	derpPort, stunPort := freePort(t), freePort(t)
	dir := t.TempDir()
	a, err := start(options{dev: true, stateDir: dir, derpPort: derpPort, stunPort: stunPort, webuiAddr: "127.0.0.1:0"}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()

	fake := cloudflaretest.New(t, cloudflaretest.Options{})
	fake.AddZone("example.com")
	dnsAddr := fake.StartDNS(t, cloudflaretest.DNSOptions{})
	token := fake.AddToken(cloudflaretest.Token{})
	stun1, stun2 := ddnstest.StartSTUN(t, nil), ddnstest.StartSTUN(t, nil)
	who := ddnstest.StartWhoami(t, ddnstest.WhoamiOptions{})
	setPublic := func(ip string) {
		for _, s := range []*ddnstest.STUN{stun1, stun2} {
			s.Report(netip.MustParseAddr(ip))
		}
		who.Report(netip.MustParseAddr(ip))
	}
	setPublic("203.0.113.9")
	a.ddns.httpClient = fake.Client()
	a.ddns.newDetector = func(config.DDNS) ddns.Detector {
		return &detect.Detector{
			STUN:      []string{stun1.Addr.String(), stun2.Addr.String()},
			Whoami:    []detect.WhoamiServer{who.DoT()},
			TLSConfig: &tls.Config{RootCAs: who.Roots},
			Timeout:   time.Second,
			Gateway:   func() (netip.Addr, bool) { return netip.Addr{}, false },
		}
	}
	a.ddns.newVerifier = func(config.DDNS) ddns.Verifier {
		return &authdns.Checker{Resolvers: []netip.AddrPort{dnsAddr}, Port: dnsAddr.Port(), Timeout: time.Second}
	}
	ctx := context.Background()

	c := a.store.Config()
	c.Hostname = "derp.example.com"
	c.DDNS.Provider = config.ProviderCloudflare
	c.DDNS.IPv6 = false
	if err := a.store.Save(c); err != nil {
		t.Fatal(err)
	}
	if st := a.ddns.Status(); !st.Enabled || !strings.Contains(st.LastError, "No Cloudflare API token") {
		t.Errorf("without a token: got %+v, want enabled with a plain error", st)
	}

	if err := a.ddns.checkCredential(ctx, c, "not-a-token"); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("checkCredential(bad token): got %v", err)
	}
	if err := a.ddns.checkCredential(ctx, c, token); err != nil {
		t.Fatalf("checkCredential(good token): %v", err)
	}
	if err := a.store.SetSecret(config.SecretCloudflareToken, token); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the A record", func() bool {
		st := a.ddns.Status()
		return len(st.ServedA) == 1 && st.ServedA[0] == netip.MustParseAddr("203.0.113.9")
	})
	if recs := fake.Records("example.com", "derp", "A"); len(recs) != 1 || recs[0].Content != "203.0.113.9" || recs[0].TTL != 60 {
		t.Errorf("derp A at the fake: %+v", recs)
	}
	if _, err := os.Stat(filepath.Join(dir, ddns.HistoryFile)); err != nil {
		t.Errorf("history file: %v", err)
	}

	// The line loses its public IPv4 (CGNAT): the map says so.
	setPublic("100.64.1.2")
	a.ddns.checkNow()
	waitUntil(t, 20*time.Second, `"IPv4": "none" in the DERP map`, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "derpmap.json"))
		return strings.Contains(string(b), `"IPv4": "none"`)
	})
	if recs := fake.Records("example.com", "derp", "A"); len(recs) != 1 || recs[0].Content != "203.0.113.9" {
		t.Errorf("derp A after CGNAT: %+v, want untouched", recs)
	}

	// Removing the token stops the updater.
	if err := a.store.SetSecret(config.SecretCloudflareToken, ""); err != nil {
		t.Fatal(err)
	}
	if st := a.ddns.Status(); !strings.Contains(st.LastError, "No Cloudflare API token") {
		t.Errorf("after removing the token: got %+v", st)
	}
	n := fake.DNSQueries()
	a.ddns.checkNow()
	time.Sleep(300 * time.Millisecond) // nothing should happen; there is no condition to poll for
	if fake.DNSQueries() != n {
		t.Errorf("a stopped updater still checks")
	}
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
