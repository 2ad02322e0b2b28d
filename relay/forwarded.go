package relay

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Behind a reverse proxy (nginx terminating TLS on 443, see the README)
// every connection comes from the proxy. The proxy names the client in
// X-Forwarded-For, but anyone can send that header, so the relay believes
// it only on connections from Policy.TrustedProxies. The client address
// matters to derpserver: it goes into the admission request of
// verify-client-url (Source), into the refusal records and the log.

// clientAddr returns the address to hand derpserver for r: the
// connection's own, or, on a connection from a trusted proxy, the last
// address in X-Forwarded-For that is not itself a trusted proxy (proxies
// append, so the addresses before it are the client's own claims). The
// port is the connection's, which keeps concurrent clients apart in the
// log. forwarded says whether the address came from the header.
func clientAddr(r *http.Request, trusted []netip.Prefix) (addr string, forwarded bool) {
	if len(trusted) == 0 {
		return r.RemoteAddr, false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !contains(trusted, peer.Addr()) {
		return r.RemoteAddr, false
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return r.RemoteAddr, false // a malformed chain names nobody
		}
		if a = a.Unmap(); !contains(trusted, a) {
			return netip.AddrPortFrom(a, peer.Port()).String(), true
		}
	}
	return r.RemoteAddr, false
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddrConn is a hijacked connection that reports the forwarded
// client address, which derpserver's handler reads from the connection.
type remoteAddrConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteAddrConn) RemoteAddr() net.Addr { return c.remote }

// forwardedWriter makes the connection hijacked through it report addr.
type forwardedWriter struct {
	http.ResponseWriter
	addr net.Addr
}

func (w forwardedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	return remoteAddrConn{c, w.addr}, brw, nil
}

func (w forwardedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// forwardedRequest returns w and r as derpserver must see them for a
// client at addr (from clientAddr): the hijacked connection (the DERP
// upgrade) and r.RemoteAddr (the WebSocket upgrade) both name it.
func forwardedRequest(w http.ResponseWriter, r *http.Request, addr string) (http.ResponseWriter, *http.Request) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return w, r
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.RemoteAddr = addr
	return forwardedWriter{w, net.TCPAddrFromAddrPort(ap)}, r2
}
