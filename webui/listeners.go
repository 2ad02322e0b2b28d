package webui

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"tailscale.com/types/logger"
)

// Listeners serves one handler on a changing set of addresses. On the box
// the set is the private addresses of its interfaces (gokrazy's
// PrivateInterfaceAddrs) on port 80, which change when DHCP hands out a
// new lease; the appliance calls Set again whenever it looks. Binding each
// address separately, rather than the wildcard, is what keeps the web UI
// off a public address the box may also have.
type Listeners struct {
	Handler http.Handler
	Logf    logger.Logf

	mu   sync.Mutex
	srvs map[string]*listener // by the address asked for, e.g. "192.168.1.23:80"
}

type listener struct {
	srv *http.Server
	ln  net.Listener
}

// Set makes the handler serve exactly on addrs (host:port each): it binds
// new addresses and closes vanished ones. An address that cannot be bound
// is reported in the returned error and the others keep serving; the next
// Set tries it again.
func (l *Listeners) Set(addrs []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srvs == nil {
		l.srvs = map[string]*listener{}
	}
	var errs []error
	for _, a := range addrs {
		if _, ok := l.srvs[a]; ok {
			continue
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			errs = append(errs, fmt.Errorf("web UI listener on %s: %w", a, err))
			continue
		}
		srv := &http.Server{
			Handler: l.Handler,
			// A slow or stuck LAN client cannot hold connections
			// forever. The write timeout leaves room for a tailnet
			// login, which waits up to 45 s for tailscaled.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      90 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    32 << 10,
		}
		l.srvs[a] = &listener{srv, ln}
		l.logf("webui: serving on http://%s/", ln.Addr())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				l.logf("webui: serving on %s: %v", a, err)
			}
		}()
	}
	for a, s := range l.srvs {
		if !slices.Contains(addrs, a) {
			l.logf("webui: no longer serving on %s", a)
			s.srv.Close()
			delete(l.srvs, a)
		}
	}
	return errors.Join(errs...)
}

// Addrs returns the bound addresses (with the real port when 0 was asked).
func (l *Listeners) Addrs() []net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	var as []net.Addr
	for _, s := range l.srvs {
		as = append(as, s.ln.Addr())
	}
	slices.SortFunc(as, func(a, b net.Addr) int { return strings.Compare(a.String(), b.String()) })
	return as
}

// Close stops every listener.
func (l *Listeners) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for a, s := range l.srvs {
		s.srv.Close()
		delete(l.srvs, a)
	}
}

func (l *Listeners) logf(format string, args ...any) {
	if l.Logf != nil {
		l.Logf(format, args...)
	}
}
