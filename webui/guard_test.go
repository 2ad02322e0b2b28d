package webui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestRefusesForeignHost: a request for a name the box does not answer
// to is refused before anything else (DNS rebinding: the attacker's name
// resolves to the box, the Host header still says the attacker's name).
func TestRefusesForeignHost(t *testing.T) {
	b := newBox(t, nil).configured()
	for _, tt := range []struct {
		host string
		want bool // served
	}{
		{"homederp", true},
		{"HomeDerp.", true},
		{"homederp:80", true},
		{"homederp.lan", true},
		{"homederp.local", true},
		{"homederp.home.arpa", true},
		{"derp.example.com", true}, // the relay's configured name
		{"Derp.Example.com:80", true},
		{"192.168.1.23", true}, // a LAN address of the box
		{"192.168.1.23:80", true},
		{"[fe80::1]:80", true},
		{"127.0.0.1:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"evil.example", false},
		{"homederp.evil.example", false},
		{"lan.homederp", false},
		{"192.168.1.99", false}, // not the box
		{"203.0.113.5", false},
		{"", false},
	} {
		req := httptest.NewRequest("GET", "/login", nil)
		req.RemoteAddr = "127.0.0.1:5000"
		req.Host = tt.host
		w := httptest.NewRecorder()
		b.s.ServeHTTP(w, req)
		if got := w.Code != http.StatusForbidden; got != tt.want {
			t.Errorf("GET /login with Host %q: status %d, want served=%v", tt.host, w.Code, tt.want)
		}
		if !tt.want && !strings.Contains(w.Body.String(), "answers only to its own names") {
			t.Errorf("Host %q: refusal without a reason: %q", tt.host, w.Body.String())
		}
	}
}

// TestRefusalsAreSummarised: a flood of refused requests costs a couple
// of log lines, not one each, and the status page counts them.
func TestRefusalsAreSummarised(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	b := newBox(t, func(o *Options) {
		o.Logf = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, fmt.Sprintf(format, args...))
		}
	}).configured().login()
	refuse := func(n int) {
		for i := range n {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = fmt.Sprintf("203.0.113.%d:4000", i%200)
			w := httptest.NewRecorder()
			b.s.ServeHTTP(w, req)
			if w.Code != http.StatusForbidden {
				t.Fatalf("request from 203.0.113.x: %d", w.Code)
			}
		}
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range lines {
			if strings.Contains(l, "refused") {
				n++
			}
		}
		return n
	}
	refuse(250)
	if got := count(); got != 1 {
		t.Errorf("log lines about 250 refusals in a burst: got %d, want 1:\n%s", got, strings.Join(lines, "\n"))
	}
	b.clock.Advance(refusalLogEvery)
	refuse(1)
	mu.Lock()
	last := lines[len(lines)-2]
	mu.Unlock()
	if got := count(); got != 3 || !strings.Contains(last, "refused 249 more requests (not from the local network) from 200 addresses") {
		t.Errorf("after a quiet minute: got %d lines, want 3 with a summary of 249:\n%s", got, strings.Join(lines, "\n"))
	}
	_, body := b.get("/")
	contains(t, "status page", body, "The web UI refused 251 requests from outside the local network")
}
