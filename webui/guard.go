package webui

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gokrazy/gokrazy/ifaddr"
	"github.com/homederp/homederp/appliance/config"
	"tailscale.com/types/logger"
)

// Two checks come before anything else a request gets:
//
//   - its source must be on the local network (a port-forward to the web
//     UI set up by mistake must not open it to the Internet), and
//   - its Host must be one of the box's own names or addresses. A page on
//     any web site can make the browser resolve that site's name to the
//     box's LAN address (DNS rebinding) and then read the answers as its
//     own; the Host header still carries the foreign name, so refusing
//     names the box does not answer to stops it.
//
// Refusals are counted and summarised in the log, as the relay does for
// refused clients: a scanner or a rebinding page retries without end.

// remoteAddr parses r.RemoteAddr; an unparsable one is invalid.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// isPrivateSource says whether a request may reach the web UI at all: the
// listeners bind only private addresses, and this refuses anything that
// got through from elsewhere anyway. Private means what gokrazy means:
// loopback, RFC 1918, ULA, link-local and the tailnet range 100.64.0.0/10.
func isPrivateSource(a netip.Addr) bool {
	return a.IsValid() && ifaddr.IsInPrivateNet(a.AsSlice())
}

// localSuffixes are the domains home routers and mDNS put a LAN host's
// name under (e.g. homederp.lan on OpenWrt). None can be registered on
// the Internet, so no outside page can point one at the box.
var localSuffixes = []string{"local", "lan", "home", "home.arpa", "internal", "localdomain"}

// hostAllowed reports whether the request's Host names this box: one of
// its addresses (the one the request came in on, a LAN address, any
// loopback address), its own name bare or under a local suffix, or the
// relay's configured public name.
func (s *Server) hostAllowed(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if a, err := netip.ParseAddr(host); err == nil {
		return s.isBoxAddr(r, a.Unmap())
	}
	if host == "localhost" {
		return remoteAddr(r).IsLoopback()
	}
	if host != "" && host == config.NormalizeHostname(s.o.Store.Config().Hostname) {
		return true
	}
	if name := strings.ToLower(s.o.BoxName); name != "" {
		if host == name {
			return true
		}
		if rest, ok := strings.CutPrefix(host, name+"."); ok && slices.Contains(localSuffixes, rest) {
			return true
		}
	}
	return false
}

func (s *Server) isBoxAddr(r *http.Request, a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil && ap.Addr().Unmap().WithZone("") == a {
			return true
		}
	}
	if s.o.LANAddrs != nil {
		return slices.ContainsFunc(s.o.LANAddrs(), func(l netip.Addr) bool { return l.Unmap().WithZone("") == a })
	}
	return false
}

// refusalLogEvery is how often refusals of one kind reach the log: the
// first of a quiet period in full, the rest as one summary line.
const refusalLogEvery = time.Minute

// refusals counts the requests the guard refused, by kind, and keeps the
// log to about a line a minute however many arrive. A summary is written
// when the next refusal comes after the period, so there is no timer to
// stop.
type refusals struct {
	logf logger.Logf
	now  func() time.Time

	mu    sync.Mutex
	kinds map[string]*refusalKind
}

type refusalKind struct {
	Total    int64     // since start
	Last     time.Time // when the latest came
	LastSrc  string    // where the latest came from, e.g. "203.0.113.5"
	LastHost string    // the name it asked for (refusedHost), e.g. "evil.example"

	loggedAt   time.Time // when one was last logged in full
	suppressed int       // since then, not yet summarised
	sources    map[string]bool
}

// Kinds of refusal.
const (
	refusedSource = "source" // a source outside the local network
	refusedHost   = "host"   // a Host the box does not answer to
)

// note counts one refusal of kind from src, asking for host.
func (rs *refusals) note(kind, src, host string) {
	what := "from " + src
	if kind == refusedHost {
		what += " for " + strconv.Quote(host)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.kinds == nil {
		rs.kinds = map[string]*refusalKind{}
	}
	k := rs.kinds[kind]
	if k == nil {
		k = &refusalKind{}
		rs.kinds[kind] = k
	}
	now := rs.now()
	k.Total++
	k.Last, k.LastSrc, k.LastHost = now, src, host
	if !k.loggedAt.IsZero() && now.Sub(k.loggedAt) < refusalLogEvery {
		k.suppressed++
		if len(k.sources) < 1000 {
			if k.sources == nil {
				k.sources = map[string]bool{}
			}
			k.sources[src] = true
		}
		return
	}
	if k.suppressed > 0 {
		rs.logf("webui: refused %d more requests (%s) from %d addresses since %s", k.suppressed, refusalWords[kind], len(k.sources), k.loggedAt.Format(time.TimeOnly))
	}
	rs.logf("webui: refused a request (%s): %s; further ones are counted and summarised every %v", refusalWords[kind], what, refusalLogEvery)
	k.loggedAt, k.suppressed, k.sources = now, 0, nil
}

var refusalWords = map[string]string{
	refusedSource: "not from the local network",
	refusedHost:   "for a name this box does not answer to",
}

// stats returns the counts of one kind (zero if none).
func (rs *refusals) stats(kind string) refusalKind {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if k := rs.kinds[kind]; k != nil {
		return refusalKind{Total: k.Total, Last: k.Last, LastSrc: k.LastSrc, LastHost: k.LastHost}
	}
	return refusalKind{}
}

// guard answers a request that may not reach the web UI and reports
// whether it did.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) bool {
	src := remoteAddr(r)
	if !isPrivateSource(src) {
		s.refused.note(refusedSource, src.String(), r.Host)
		http.Error(w, s.tr(r).S("http.not_local"), http.StatusForbidden)
		return true
	}
	if !s.hostAllowed(r) {
		s.refused.note(refusedHost, src.String(), r.Host)
		http.Error(w, s.tr(r).S("http.foreign_host", "Host", strconv.Quote(r.Host)), http.StatusForbidden)
		return true
	}
	return false
}
