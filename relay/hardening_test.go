package relay

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/relay/relaytest"
)

// TestPreDERPTimeouts checks that connections which never get to DERP
// are closed by the server: a silent TCP connection, a TLS handshake
// that stops halfway, a finished handshake with no request, and an idle
// kept-alive connection.
func TestPreDERPTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tr := startRelayWith(t, t.TempDir(), relayOpts{handshakeTimeout: timeout, idleTimeout: timeout})
	addr := tr.srv.DERPAddr().String()

	for _, tt := range []struct {
		name string
		open func(t *testing.T) net.Conn
	}{
		{"silent TCP", func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"half a ClientHello", func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00})
			return c
		}},
		{"TLS but no request", func(t *testing.T) net.Conn {
			c, err := tlsDial(addr)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"half an HTTP request", func(t *testing.T) net.Conn {
			c, err := tlsDial(addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET /derp HTTP/1.1\r\nHost: localhost\r\n")
			return c
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.open(t)
			defer c.Close()
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := io.Copy(io.Discard, c)
			el := time.Since(start)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the server kept the connection open for 10s; want it closed after about %v", timeout)
			}
			if el > 5*time.Second || el < timeout/2 {
				t.Errorf("closed after %v, want about %v", el, timeout)
			}
		})
	}

	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := tlsDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /derp/probe HTTP/1.1\r\nHost: localhost\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("probe: %v", resp.Status)
		}
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, br)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("an idle kept-alive connection stayed open for 10s")
		}
		if el := time.Since(start); el > 5*time.Second || el < timeout/2 {
			t.Errorf("idle connection closed after %v, want about %v", el, timeout)
		}
	})

	// Throughout, real clients connect.
	relaytest.Exchange(t, relaytest.Connect(t, tr.region), relaytest.Connect(t, tr.region))
}

func TestNoDebugOrMetricsOnPublicPort(t *testing.T) {
	tr := startRelay(t, t.TempDir())
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, p := range []string{"/debug/", "/debug/vars", "/debug/varz", "/debug/pprof/goroutine", "/metrics", "/varz", "/bootstrap-dns"} {
		resp, err := hc.Get("https://" + tr.srv.DERPAddr().String() + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || strings.Contains(string(b), "derp_") {
			t.Errorf("GET %s on the DERP port: %v, want 404 and no metrics", p, resp.Status)
		}
	}
}
