package detect

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SystemAddrs lists the IPv6 addresses of the network namespace of the
// calling thread with their kernel flags, through netlink.
func SystemAddrs() ([]IfAddr, error) {
	list, err := netlink.AddrList(nil, netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("listing IPv6 addresses: %w", err)
	}
	names := map[int]string{}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
	}
	var out []IfAddr
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, IfAddr{
			Interface:  names[a.LinkIndex],
			Prefix:     netip.PrefixFrom(ip.Unmap(), ones),
			Temporary:  a.Flags&unix.IFA_F_TEMPORARY != 0,
			Deprecated: a.Flags&unix.IFA_F_DEPRECATED != 0 || (a.PreferedLft == 0 && a.ValidLft != 0),
			Tentative:  a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0,
		})
	}
	return out, nil
}

// SystemAddrEvents calls changed after every address added to or removed
// from the network namespace of the calling thread (netlink RTM_NEWADDR
// and RTM_DELADDR, which include an address's flags changing), until ctx
// is done. On an error (the kernel dropped events because the socket's
// buffer overflowed, say) changed is called too, as something may have
// changed unseen, and the watch may end; the caller's periodic probes
// still list the addresses.
func SystemAddrEvents(ctx context.Context, changed func()) error {
	ch := make(chan netlink.AddrUpdate, 16)
	err := netlink.AddrSubscribeWithOptions(ch, ctx.Done(), netlink.AddrSubscribeOptions{
		ErrorCallback: func(error) { changed() },
	})
	if err != nil {
		return fmt.Errorf("watching addresses over netlink: %w", err)
	}
	go func() {
		for range ch {
			changed()
		}
	}()
	return nil
}
