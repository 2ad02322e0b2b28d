package ddnstest

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"time"
)

// APIClient returns an HTTP client that sends requests for
// https://apiHost (e.g. "dnspod.tencentcloudapi.com") to a provider fake
// at fakeURL (e.g. "http://127.0.0.1:40000") over connections dialled with
// dial (nil = the host's network). The Host header stays apiHost, as the
// request signature covers it; other hosts are dialled as they are.
func APIClient(apiHost, fakeURL string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	if dial != nil {
		tr.DialContext = dial
	}
	u, err := url.Parse(fakeURL)
	if err != nil {
		panic("ddnstest: bad fake URL " + fakeURL)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: rewrite{apiHost: apiHost, fake: u.Host, next: tr}}
}

type rewrite struct {
	apiHost, fake string
	next          http.RoundTripper
}

func (rt rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == rt.apiHost {
		req = req.Clone(req.Context())
		req.URL.Scheme = "http"
		req.URL.Host = rt.fake
		req.Host = rt.apiHost
	}
	return rt.next.RoundTrip(req)
}
