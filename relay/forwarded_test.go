package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

func TestClientAddr(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("192.168.1.2/32"), netip.MustParsePrefix("10.0.0.0/24")}
	for _, tt := range []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
		fwd     bool
	}{
		{"no proxy configured: the header is ignored", "198.51.100.7:4000", []string{"203.0.113.9"}, nil, "198.51.100.7:4000", false},
		{"from the proxy", "192.168.1.2:4000", []string{"203.0.113.9"}, proxy, "203.0.113.9:4000", true},
		{"not from the proxy: a forged header is ignored", "198.51.100.7:4000", []string{"203.0.113.9"}, proxy, "198.51.100.7:4000", false},
		{"the client's own claim before the proxy's entry is ignored", "192.168.1.2:4000", []string{"192.0.2.1, 203.0.113.9"}, proxy, "203.0.113.9:4000", true},
		{"a chain of trusted proxies", "10.0.0.5:4000", []string{"203.0.113.9, 192.168.1.2"}, proxy, "203.0.113.9:4000", true},
		{"several header lines", "192.168.1.2:4000", []string{"192.0.2.1", "203.0.113.9"}, proxy, "203.0.113.9:4000", true},
		{"IPv6 client", "192.168.1.2:4000", []string{"2001:db8::7"}, proxy, "[2001:db8::7]:4000", true},
		{"IPv4-mapped proxy address", "[::ffff:192.168.1.2]:4000", []string{"203.0.113.9"}, proxy, "203.0.113.9:4000", true},
		{"from the proxy without a header", "192.168.1.2:4000", nil, proxy, "192.168.1.2:4000", false},
		{"a malformed chain names nobody", "192.168.1.2:4000", []string{"203.0.113.9, unknown"}, proxy, "192.168.1.2:4000", false},
		{"only proxies in the chain", "192.168.1.2:4000", []string{"10.0.0.9"}, proxy, "192.168.1.2:4000", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/derp", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, fwd := clientAddr(r, tt.trusted)
			if got != tt.want || fwd != tt.fwd {
				t.Errorf("clientAddr(%s, XFF %q): got %q, %v; want %q, %v", tt.remote, tt.xff, got, fwd, tt.want, tt.fwd)
			}
		})
	}
}

// TestForwardedFor puts a reverse proxy (net/http/httputil, which adds
// X-Forwarded-For as nginx does) in front of the relay and a client on
// another loopback address behind it: derpserver sees the client's
// address (in the admission request's Source) when the proxy is trusted,
// and the proxy's when it is not.
func TestForwardedFor(t *testing.T) {
	sources := make(chan string, 10)
	admit := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req tailcfg.DERPAdmitClientRequest
		json.NewDecoder(r.Body).Decode(&req)
		sources <- req.Source.String()
		json.NewEncoder(w).Encode(tailcfg.DERPAdmitClientResponse{Allow: true})
	}))
	defer admit.Close()
	tr := startRelayWith(t, t.TempDir(), relayOpts{policy: Policy{Verify: Verify{Mode: VerifyURL, URL: admit.URL}}})

	backend := &url.URL{Scheme: "https", Host: tr.srv.DERPAddr().String()}
	rp := httputil.NewSingleHostReverseProxy(backend)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // like nginx's default proxy_ssl_verify off
	proxy := httptest.NewTLSServer(rp)
	defer proxy.Close()
	roots := x509.NewCertPool()
	roots.AddCert(proxy.Certificate())

	source := func(t *testing.T) string {
		t.Helper()
		c, err := derphttp.NewClient(key.NewNode(), proxy.URL+"/derp", t.Logf, netmon.NewStatic())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.TLSConfig = &tls.Config{RootCAs: roots}
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
		c.SetURLDialer(d.DialContext)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("connecting through the proxy: %v", err)
		}
		select {
		case s := <-sources:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("the relay asked the admission URL nothing")
		}
		return ""
	}

	t.Run("proxy not trusted: the relay sees the proxy", func(t *testing.T) {
		if got := source(t); got != "127.0.0.1" {
			t.Errorf("Source: got %s, want the proxy's 127.0.0.1", got)
		}
	})
	t.Run("proxy trusted: the relay sees the client", func(t *testing.T) {
		p := tr.srv.Policy()
		p.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		if err := tr.srv.Apply(p); err != nil {
			t.Fatal(err)
		}
		if got := source(t); got != "127.0.0.2" {
			t.Errorf("Source: got %s, want the client's 127.0.0.2", got)
		}
	})
}
