package main

import (
	"context"
	"net/netip"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns/detect"
	"github.com/homederp/homederp/internal/usermsg"
	"github.com/homederp/homederp/relay/portmap"
)

// portmapService asks the home router to forward the relay's ports and
// to open IPv6 pinholes for them (package portmap), following the
// configuration. In -dev it does nothing: the relay listens on loopback.
type portmapService struct {
	a           *app
	loop        *applyLoop
	m           *portmap.Mapper // nil in -dev or when the mapper could not start
	problem     string          // why m is nil
	problemText usermsg.Msg     // problem, to be translated
	cancel      context.CancelFunc
	done        chan struct{}
}

func newPortmapService(a *app) *portmapService {
	s := &portmapService{a: a}
	if a.opts.dev {
		s.problem, s.problemText = usermsg.Say("router.off_dev", "Port mapping is off in -dev: the relay listens on loopback only.", nil)
		return s
	}
	m, err := portmap.New(portmap.Options{
		Net:        detect.SystemNet{},
		Addr6:      a.boxIPv6,
		PublicIPv4: func() netip.Addr { return a.ddns.Status().PublicIPv4 },
		StateDir:   a.opts.stateDir,
		Logf:       a.logf,
	})
	if err != nil {
		s.problem, s.problemText = usermsg.Say("router.failed", "Port mapping could not start: {{.Err}}", map[string]any{"Err": err.Error()})
		a.logf("portmap: %v", err)
		return s
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.m, s.cancel, s.done = m, cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		m.Run(ctx)
	}()
	return s
}

// apply tells the mapper the ports (DERP unless a reverse proxy takes
// it, STUN, and the peer relay's when it is on) and whether to ask for
// them; the mapper acts on it in its own goroutine.
func (s *portmapService) apply(c config.Config) error {
	if s.m == nil {
		return nil
	}
	var ports []portmap.Port
	if !c.ReverseProxy.Enabled {
		// Behind a reverse proxy, DERP's public port leads to the
		// proxy, not to the box: only the user can forward that.
		ports = append(ports, portmap.Port{Proto: "tcp", Port: uint16(c.Relay.DERPPort), What: "DERP"})
	}
	ports = append(ports, portmap.Port{Proto: "udp", Port: uint16(c.Relay.STUNPort), What: "STUN"})
	if p := c.PeerRelay.ActivePort(); p != 0 {
		ports = append(ports, portmap.Port{Proto: "udp", Port: uint16(p), What: "peer relay"})
	}
	s.m.Set(portmap.Config{Enabled: c.PortMapping.Enabled, Ports: ports, Hostname: hostname(c)})
	return nil
}

// status is what the web UI shows about the router.
func (s *portmapService) status() portmap.Status {
	if s.m == nil {
		return portmap.Status{Problem: s.problem, Texts: portmap.Texts{Problem: s.problemText}}
	}
	return s.m.Status()
}

func (s *portmapService) close() {
	if s.m == nil {
		return
	}
	s.cancel()
	<-s.done
}

// boxIPv6 is the address clients reach the box at over IPv6: the one
// ddns publishes in the AAAA record, else the box's first stable global
// address.
func (a *app) boxIPv6() (netip.Addr, bool) {
	if a6 := a.ddns.Status().PublicIPv6; a6.IsValid() {
		return a6, true
	}
	addrs, err := detect.SystemAddrs()
	if err != nil {
		return netip.Addr{}, false
	}
	if stable, _ := detect.StableIPv6(addrs); len(stable) > 0 {
		return stable[0], true
	}
	return netip.Addr{}, false
}
