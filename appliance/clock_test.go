package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns/cloudflaretest"
	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/testwait"
	"github.com/homederp/homederp/relay/relaytest"
)

// logLines collects an app's log for the test to search.
type logLines struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.t.Helper()
	l.t.Logf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// TestRelayBeforeTheClock boots the appliance twice the way a board
// without a real-time clock does: the first time, with nothing stored, it
// waits for the clock before it makes its certificate; after a power cut
// the relay serves the stored, pinned certificate while the clock is still
// unset, and DDNS starts only once the clock is.
func TestRelayBeforeTheClock(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	fake := cloudflaretest.New(t, cloudflaretest.Options{})
	fake.AddZone("example.com")
	dnsAddr := fake.StartDNS(t, cloudflaretest.DNSOptions{})
	token := fake.AddToken(cloudflaretest.Token{})
	h, _ := loopbackDDNS(t, dnsAddr, "203.0.113.9")
	h.httpClient = fake.Client()
	opts := options{stateDir: dir, derpPort: devbox.FreePort(t), stunPort: devbox.FreePort(t), hooks: h}
	servesA := func(a *app) func() error {
		return func() error {
			if st := a.ddns.Status(); !st.Enabled || len(st.ServedA) != 1 {
				return errors.New("DDNS does not serve the A record yet")
			}
			return nil
		}
	}

	t.Run("first boot waits for the clock", func(t *testing.T) {
		waited := false
		o := opts
		o.waitClock = func() {
			waited = true
			if _, err := os.Stat(certs); err == nil {
				t.Errorf("a certificate was made before the clock was set")
			}
		}
		a := startDev(t, o)
		defer a.close()
		if !waited {
			t.Fatal("start did not wait for the clock")
		}
		a.setSecret(t, config.SecretCloudflareToken, token)
		a.save(t, func(c *config.Config) {
			c.Hostname = "derp.example.com"
			c.DDNS.Provider = config.ProviderCloudflare
			c.DDNS.IPv6 = false
		})
		testwait.For(t, 20*time.Second, "DDNS running", servesA(a))
	})

	pinBefore := ""
	if m := devbox.ReadMap(t, dir); m.Regions[900] != nil {
		pinBefore = m.Regions[900].Nodes[0].CertName
	}

	t.Run("after a power cut the relay serves before the clock", func(t *testing.T) {
		clock := make(chan struct{})
		var once sync.Once
		setClock := func() { once.Do(func() { close(clock) }) }
		defer setClock()
		o := opts
		o.dev = true
		o.webuiAddr = "127.0.0.1:0"
		o.waitClock = func() { <-clock }
		logs := &logLines{t: t}
		started := make(chan error, 1)
		var a *app
		go func() {
			var err error
			a, err = start(o, logs.logf)
			started <- err
		}()
		select {
		case err := <-started:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			setClock()
			<-started
			t.Fatal("start waited for the clock although the certificate is stored")
		}
		defer a.close()
		if !logs.has("the clock is not set yet") {
			t.Errorf("the log does not say the relay runs before the clock")
		}

		r := a.region(t)
		if got := r.Nodes[0].CertName; got != pinBefore || got == "" {
			t.Errorf("map pin %q, want the stored certificate's %q", got, pinBefore)
		}
		node := *r.Nodes[0]
		node.IPv4 = "127.0.0.1" // derp.example.com is not dialled
		r.Nodes[0] = &node
		relaytest.Exchange(t, relaytest.Connect(t, r), relaytest.Connect(t, r))
		if st := a.ddns.Status(); st.Enabled {
			t.Errorf("DDNS runs before the clock: %+v", st)
		}

		setClock()
		testwait.For(t, 20*time.Second, "DDNS once the clock is set", servesA(a))
	})
}
