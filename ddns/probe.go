package ddns

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/homederp/homederp/ddns/detect"
)

// Prober makes the cheap checks between full checks; *detect.Detector is
// one.
//
// A full check (two STUN servers per family, DNS over TLS whoami, the
// router, every authoritative server) is too much to run every few
// seconds, so a change of the line's address waits for the next one. A
// probe costs one STUN binding request (one small UDP packet each way) and
// a NAT-PMP request on the LAN, so it runs every ProbeInterval; the box's
// own IPv6 addresses cost nothing to list and the kernel announces their
// changes. When a probe sees something other than the last full check
// did, the full check runs at once, and it, not the probe, decides
// whether anything is written.
type Prober interface {
	ProbeSTUN(ctx context.Context) detect.Observation
	ProbeRouter(ctx context.Context) detect.Observation
	StableIPv6Addrs() ([]netip.Addr, error)
	WatchAddrs(ctx context.Context, changed func()) error
}

// probe4 probes the IPv4 side and says why the line looks changed since
// the last full check, or "" if it does not. It asks the router first (on
// the LAN) and a STUN server only when the last check knew the address:
// behind CGNAT, say, a probe sends nothing to the Internet.
func (u *Updater) probe4(ctx context.Context) string {
	if !u.c.IPv4 {
		return ""
	}
	last := u.detection().IPv4
	if last.RouterWAN.IsValid() {
		if o := u.c.Prober.ProbeRouter(ctx); o.Addr.IsValid() && o.Addr != last.RouterWAN {
			return fmt.Sprintf("the router's WAN address is %v, the last check saw %v", o.Addr, last.RouterWAN)
		}
	}
	if last.State == detect.Known {
		if o := u.c.Prober.ProbeSTUN(ctx); o.Addr.IsValid() && o.Addr != last.Addr {
			return fmt.Sprintf("%s sees %v, the last check saw %v", o.Source, o.Addr, last.Addr)
		}
	}
	return ""
}

// probe6 lists the box's stable IPv6 addresses and says why they no
// longer fit the last full check, or "".
func (u *Updater) probe6() string {
	if !u.c.IPv6 {
		return ""
	}
	last := u.detection().IPv6
	stable, err := u.c.Prober.StableIPv6Addrs()
	if err != nil {
		return ""
	}
	switch {
	case last.State == detect.Known && !slices.Contains(stable, last.Addr):
		return fmt.Sprintf("this box's IPv6 address %v is gone or deprecated", last.Addr)
	case last.State != detect.Known && !slices.Equal(stable, last.Stable):
		return fmt.Sprintf("this box's stable IPv6 addresses changed to %s", joinAddrs(stable))
	}
	return ""
}

// detection is the last full check's detection.
func (u *Updater) detection() detect.Result {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.det
}

// sameDetection reports whether two full checks saw the same line, so
// that the probe that triggered the second one was a false alarm.
func sameDetection(a, b detect.Result) bool {
	same := func(x, y detect.Family) bool {
		return x.State == y.State && x.Addr == y.Addr && x.RouterWAN == y.RouterWAN && slices.Equal(x.Stable, y.Stable)
	}
	return same(a.IPv4, b.IPv4) && same(a.IPv6, b.IPv6)
}
