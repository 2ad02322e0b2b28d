package webui

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/homederp/homederp/appliance/config"
	"tailscale.com/tailcfg"
)

// TestReverseProxyChoice is setup step 2's "behind a reverse proxy": the
// choice is saved, the router's forward and the DERP map follow it, and a
// bad proxy address is refused next to its field.
func TestReverseProxyChoice(t *testing.T) {
	b := newBox(t, nil).configured().login()
	ports := func(extra url.Values) url.Values {
		f := url.Values{"relay.derp_port": {"12345"}, "relay.stun_port": {"3478"}}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}

	resp, body := b.submit("/setup", "/setup/ports", ports(url.Values{"reverse_proxy.enabled": {"on"}, "reverse_proxy.trusted": {"nginx.lan"}}))
	mustStatus(t, "a bad proxy address", resp, body, http.StatusBadRequest)
	contains(t, "the refused form", body, "is not an IP address or prefix", "the proxy&#39;s TLS port is usually 443")
	if b.store.Config().ReverseProxy.Enabled {
		t.Error("a refused form was saved")
	}

	resp, body = b.submit("/setup", "/setup/ports", ports(url.Values{"reverse_proxy.enabled": {"on"}, "reverse_proxy.public_port": {"443"}, "reverse_proxy.trusted": {"192.168.1.2, 192.168.1.3"}}))
	mustStatus(t, "behind nginx on 443", resp, body, http.StatusSeeOther)
	want := config.ReverseProxy{Enabled: true, PublicPort: 443, Trusted: []string{"192.168.1.2", "192.168.1.3"}}
	if got := b.store.Config().ReverseProxy; got.Enabled != want.Enabled || got.PublicPort != want.PublicPort || !slices.Equal(got.Trusted, want.Trusted) {
		t.Errorf("saved reverse_proxy: got %+v, want %+v", got, want)
	}
	_, body = b.get("/setup")
	contains(t, "setup after saving", body, "through your reverse proxy at derp.example.com:443", `value="192.168.1.2 192.168.1.3"`, "your reverse proxy</b>")

	_, body = b.get("/derpmap", "Accept", "application/json")
	var v mapView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	var m tailcfg.DERPMap
	if err := json.Unmarshal([]byte(v.JSON), &m); err != nil {
		t.Fatal(err)
	}
	n := m.Regions[900].Nodes[0]
	if v.Proxy != "derp.example.com:443" || !v.URLTrusted || v.URL != "https://derp.example.com:443/derpmap.json" ||
		n.DERPPort != 443 || n.STUNPort != 3478 || n.CertName != "" {
		t.Errorf("map page behind the proxy: proxy %q, url %q (trusted %v), node %+v", v.Proxy, v.URL, v.URLTrusted, n)
	}
	_, body = b.get("/derpmap")
	contains(t, "the map page", body, `id="proxy-note"`, "the proxy must present one they trust")

	resp, body = b.submit("/setup", "/setup/ports", ports(nil))
	mustStatus(t, "no proxy again", resp, body, http.StatusSeeOther)
	if b.store.Config().ReverseProxy.Enabled {
		t.Error("unchecking the proxy left it on")
	}
	_, body = b.get("/derpmap", "Accept", "application/json")
	json.Unmarshal([]byte(body), &v)
	if v.Proxy != "" || !v.Pinned {
		t.Errorf("map page without the proxy: proxy %q, pinned %v; want the box's pinned node", v.Proxy, v.Pinned)
	}
}
