package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
	"github.com/homederp/homederp/internal/testwait"
)

// TestDDNSService runs the appliance in-process with its ddns service
// pointed at loopback stand-ins for the Internet and Cloudflare: saving a
// provider and token starts the updater, the record appears, a line
// without public IPv4 turns the DERP map's IPv4 to "none", and removing the
// token stops it.
func TestDDNSService(t *testing.T) {
	fake := cloudflaretest.New(t, cloudflaretest.Options{})
	fake.AddZone("example.com")
	dnsAddr := fake.StartDNS(t, cloudflaretest.DNSOptions{})
	token := fake.AddToken(cloudflaretest.Token{})
	h, setPublic := loopbackDDNS(t, dnsAddr, "203.0.113.9")
	h.httpClient = fake.Client()
	dir := t.TempDir()
	a := startDev(t, options{stateDir: dir, hooks: h})
	ctx := context.Background()

	a.save(t, func(c *config.Config) {
		c.Hostname = "derp.example.com"
		c.DDNS.Provider = config.ProviderCloudflare
		c.DDNS.IPv6 = false
	})
	c := a.store.Config()
	if st := a.ddns.Status(); !st.Enabled || !strings.Contains(st.LastError, "No Cloudflare API token") {
		t.Errorf("without a token: got %+v, want enabled with a plain error", st)
	}

	if err := a.ddns.checkCredential(ctx, c, "not-a-token"); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("checkCredential(bad token): got %v", err)
	}
	if err := a.ddns.checkCredential(ctx, c, token); err != nil {
		t.Fatalf("checkCredential(good token): %v", err)
	}
	a.setSecret(t, config.SecretCloudflareToken, token)
	testwait.For(t, 20*time.Second, "the A record", func() error {
		if st := a.ddns.Status(); len(st.ServedA) != 1 || st.ServedA[0] != netip.MustParseAddr("203.0.113.9") {
			return fmt.Errorf("served A: %v, want [203.0.113.9]", st.ServedA)
		}
		return nil
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
	testwait.For(t, 20*time.Second, `"IPv4": "none" in the DERP map`, func() error {
		if b, _ := os.ReadFile(filepath.Join(dir, "derpmap.json")); !strings.Contains(string(b), `"IPv4": "none"`) {
			return errors.New("derpmap.json does not say so yet")
		}
		return nil
	})
	if recs := fake.Records("example.com", "derp", "A"); len(recs) != 1 || recs[0].Content != "203.0.113.9" {
		t.Errorf("derp A after CGNAT: %+v, want untouched", recs)
	}

	// Removing the token stops the updater.
	a.setSecret(t, config.SecretCloudflareToken, "")
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

// loopbackDDNS returns hooks that point ddns detection at loopback STUN
// and whoami servers, which see public as the line's address until
// setPublic changes it, and its verifier at the DNS server dnsAddr.
func loopbackDDNS(t *testing.T, dnsAddr netip.AddrPort, public string) (h hooks, setPublic func(ip string)) {
	t.Helper()
	stun1, stun2 := ddnstest.StartSTUN(t, nil), ddnstest.StartSTUN(t, nil)
	who := ddnstest.StartWhoami(t, ddnstest.WhoamiOptions{})
	setPublic = func(ip string) {
		for _, s := range []*ddnstest.STUN{stun1, stun2} {
			s.Report(netip.MustParseAddr(ip))
		}
		who.Report(netip.MustParseAddr(ip))
	}
	setPublic(public)
	h.detector = func(config.DDNS) *detect.Detector {
		return &detect.Detector{
			STUN:      []string{stun1.Addr.String(), stun2.Addr.String()},
			Whoami:    []detect.WhoamiServer{who.DoT()},
			TLSConfig: &tls.Config{RootCAs: who.Roots},
			Timeout:   time.Second,
			Gateway:   func() (netip.Addr, bool) { return netip.Addr{}, false },
		}
	}
	h.verifier = func(config.DDNS) ddns.Verifier {
		return &authdns.Checker{Resolvers: []netip.AddrPort{dnsAddr}, Port: dnsAddr.Port(), Timeout: time.Second}
	}
	return h, setPublic
}
