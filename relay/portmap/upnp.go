package portmap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
)

// UPnP-IGD: what almost every home router sold in China (TP-Link, Huawei,
// Xiaomi, ZTE and FiberHome ONTs) offers, usually switched on. The SOAP
// clients are github.com/huin/goupnp's, the library tailscale.com's
// portmapper uses; discovery and the HTTP client are ours, so every socket
// is opened through the caller's Net (a network namespace in tests)
// instead of goupnp's package-level HTTP client.

const ssdpPort = 1900

var (
	ssdpMulticast  = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, 255, 250}), ssdpPort)
	ssdpMulticast6 = netip.MustParseAddr("ff02::c") // link-local scope
)

// ssdpSearch asks for Internet gateway devices. Routers answer unicast
// searches to their LAN address or only multicast ones, so both are sent.
func ssdpSearch(st string) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: " + st +
		"\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n")
}

// igd is an Internet gateway device found on the LAN, with its
// connection services (port mappings) and IPv6 firewall control
// services (pinholes).
type igd struct {
	location string
	name     string // e.g. "MiniUPnPd router" or "TL-WR841N"
	wan      []igdWAN
	fw       []*internetgateway2.WANIPv6FirewallControl1
	external netip.Addr // GetExternalIPAddress of the first connection service that answers
}

// igdWAN is what the WANIPConnection1/2 and WANPPPConnection1 clients
// have in common.
type igdWAN interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string, internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
	GetSpecificPortMappingEntryCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) (internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32, err error)
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
}

// discoverIGD finds the gateway's IGD over SSDP and reads its device
// description. With an IPv6 gateway it searches over IPv6, which routers
// that check the caller's address (miniupnpd's secure mode) need before
// they open an IPv6 pinhole for it.
func discoverIGD(ctx context.Context, n Net, hc *http.Client, gw netip.Addr, timeout time.Duration) (*igd, error) {
	network, bind := "udp4", "0.0.0.0:0"
	targets := []netip.AddrPort{netip.AddrPortFrom(gw, ssdpPort), ssdpMulticast}
	if gw.Is6() {
		network, bind = "udp6", "[::]:0"
		targets = targets[:1]
		if z := gw.Zone(); z != "" {
			targets = append(targets, netip.AddrPortFrom(ssdpMulticast6.WithZone(z), ssdpPort))
		}
	}
	pc, err := n.ListenPacket(ctx, network, bind)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	deadline := time.Now().Add(timeout)
	var locs []string
	search := func() {
		for _, st := range []string{"urn:schemas-upnp-org:device:InternetGatewayDevice:1", "urn:schemas-upnp-org:device:InternetGatewayDevice:2"} {
			for _, to := range targets {
				pc.WriteTo(ssdpSearch(st), net.UDPAddrFromAddrPort(to))
			}
		}
	}
	search()
	// SSDP is plain UDP: ask again after a moment if nobody answered
	// (a router that has just booted misses the first search).
	resend, resent := time.Now().Add(timeout/4), false
	buf := make([]byte, 2048)
	for {
		wait := deadline
		if !resent && len(locs) == 0 {
			wait = minTime(wait, resend)
		}
		pc.SetReadDeadline(wait)
		nr, _, err := pc.ReadFrom(buf)
		if err != nil {
			if !resent && len(locs) == 0 && time.Now().Before(deadline) {
				resent = true
				search()
				continue
			}
			break
		}
		if loc := ssdpLocation(buf[:nr]); loc != "" && !slices.Contains(locs, loc) {
			locs = append(locs, loc)
			// Other answers come within milliseconds of the first.
			deadline = minTime(deadline, time.Now().Add(200*time.Millisecond))
		}
	}
	if len(locs) == 0 {
		var to []string
		for _, t := range targets {
			to = append(to, t.String())
		}
		return nil, fmt.Errorf("no Internet gateway device answered an SSDP search (to %s) within %v", strings.Join(to, " and "), timeout)
	}
	var errs []error
	for _, loc := range locs {
		d, err := readIGD(ctx, hc, loc, gw)
		if err == nil {
			return d, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// ssdpLocation returns the LOCATION of an SSDP answer about an IGD.
func ssdpLocation(b []byte) string {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		return ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("St")+resp.Header.Get("Usn"), "InternetGatewayDevice") {
		return ""
	}
	return resp.Header.Get("Location")
}

// readIGD fetches the device description at loc. A description served
// from an address other than the gateway is re-pointed at the gateway,
// as tailscale's portmapper does for routers that announce a stale
// address, but only within the LAN: the box never sends SOAP elsewhere.
func readIGD(ctx context.Context, hc *http.Client, loc string, gw netip.Addr) (*igd, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("IGD location %q: %w", loc, err)
	}
	if ap, err := netip.ParseAddrPort(u.Host); err != nil || ap.Addr().Unmap().WithZone("") != gw.WithZone("") {
		u.Host = net.JoinHostPort(gw.String(), u.Port())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the IGD description: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading the IGD description %s: %s", u, resp.Status)
	}
	root := new(goupnp.RootDevice)
	dec := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	dec.DefaultSpace = goupnp.DeviceXMLNamespace
	if err := dec.Decode(root); err != nil {
		return nil, fmt.Errorf("parsing the IGD description %s: %w", u, err)
	}
	base := u
	if root.URLBaseStr != "" {
		if b, err := url.Parse(root.URLBaseStr); err == nil {
			base = b
		}
	}
	root.SetURLBase(base)

	d := &igd{location: u.String(), name: root.Device.FriendlyName}
	// Newest first: WANIPConnection:2 has the clearest error codes.
	ip2, _ := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, u)
	ip1, _ := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, u)
	ppp, _ := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, u)
	for _, c := range withHTTP(hc, ip2) {
		d.wan = append(d.wan, c)
	}
	for _, c := range withHTTP(hc, ip1) {
		d.wan = append(d.wan, c)
	}
	for _, c := range withHTTP(hc, ppp) {
		d.wan = append(d.wan, c)
	}
	fw, _ := internetgateway2.NewWANIPv6FirewallControl1ClientsFromRootDevice(root, u)
	d.fw = withHTTP(hc, fw)
	if len(d.wan) == 0 && len(d.fw) == 0 {
		return nil, fmt.Errorf("the IGD at %s (%s) offers no port-mapping service", u, d.name)
	}
	for _, w := range d.wan {
		if s, err := w.GetExternalIPAddressCtx(ctx); err == nil {
			if a, err := netip.ParseAddr(s); err == nil {
				d.external = a
				break
			}
		}
	}
	return d, nil
}

// withHTTP makes goupnp's SOAP clients use hc (and so the caller's Net).
func withHTTP[C interface{ GetServiceClient() *goupnp.ServiceClient }](hc *http.Client, cs []C) []C {
	for _, c := range cs {
		c.GetServiceClient().SOAPClient.HTTPClient = *hc
	}
	return cs
}

// upnpCode is the UPnP error code in err, or 0.
func upnpCode(err error) int {
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		return f.Detail.UPnPError.Errorcode
	}
	return 0
}

// upnpError says what a SOAP fault means, in plain words.
func upnpError(err error) error {
	var f *soap.SOAPFaultError
	if !errors.As(err, &f) {
		return err
	}
	e := f.Detail.UPnPError
	known := map[int]string{
		402: "invalid arguments",
		501: "the action failed",
		606: "not authorized: the router allows no port mapping for this device or port",
		701: "no room for another pinhole",
		702: "the IPv6 firewall is off",
		703: "the router forbids inbound IPv6 pinholes",
		704: "no such pinhole",
		705: "protocol not supported",
		714: "no such mapping",
		718: "the port is mapped to another device already",
		725: "the router supports only permanent mappings",
		728: "no port mappings are left",
		729: "conflicts with another mechanism (e.g. a manual forward or the router's own service)",
	}
	msg := e.ErrorDescription
	if k, ok := known[e.Errorcode]; ok {
		msg = k
	}
	if msg == "" {
		msg = f.FaultString
	}
	return fmt.Errorf("refused: %s (UPnP error %d)", msg, e.Errorcode)
}

// upnpProto is the protocol as UPnP writes it: upper case, which some
// routers insist on (tailscale issue 7377).
func upnpProto(proto string) string { return strings.ToUpper(proto) }

// errForeign is a port the router already maps for someone else. The
// box leaves such a mapping alone.
type errForeign struct {
	client, description string
}

func (e errForeign) Error() string {
	d := ""
	if e.description != "" {
		d = fmt.Sprintf(" (%q)", e.description)
	}
	return fmt.Sprintf("the router already forwards this port to %s%s; homederp leaves that forward alone", e.client, d)
}

// upnpMap creates or renews the mapping of port on the box (self) with
// description desc. An existing entry for the port that is not the box's
// own with that description is never overwritten. A router that only
// keeps permanent mappings (error 725) gets one: the box deletes it when
// it is no longer wanted.
func (d *igd) upnpMap(ctx context.Context, proto string, port uint16, self netip.Addr, desc string, lease time.Duration, ours func(string) bool) (time.Duration, error) {
	if len(d.wan) == 0 {
		return 0, fmt.Errorf("the IGD %s has no WAN connection service", d.location)
	}
	if err := d.checkFree(ctx, proto, port, self, ours); err != nil {
		return 0, err
	}
	w := d.wan[0]
	P := upnpProto(proto)
	err := w.AddPortMappingCtx(ctx, "", port, P, port, self.String(), true, desc, uint32(lease/time.Second))
	if upnpCode(err) == 725 {
		lease = 0
		err = w.AddPortMappingCtx(ctx, "", port, P, port, self.String(), true, desc, 0)
	}
	if upnpCode(err) == 718 {
		return 0, errForeign{client: "another device"}
	}
	if err != nil {
		return 0, upnpError(err)
	}
	return lease, nil
}

// checkFree returns errForeign if the router maps port already for
// anyone but the box (self) with a description ours accepts. Routers
// keep one table for every protocol (miniupnpd does), so this also
// guards a PCP or NAT-PMP request from taking over a forward another
// program made with UPnP.
func (d *igd) checkFree(ctx context.Context, proto string, port uint16, self netip.Addr, ours func(string) bool) error {
	_, client, _, desc, _, err := d.wan[0].GetSpecificPortMappingEntryCtx(ctx, "", port, upnpProto(proto))
	switch {
	case err == nil && (client != self.String() || !ours(desc)):
		return errForeign{client, desc}
	case err != nil && upnpCode(err) == 0:
		return fmt.Errorf("asking the IGD: %w", err) // not a SOAP answer: HTTP failed
	}
	return nil
}

// upnpUnmap deletes the box's mapping of port, after checking it is
// still the box's: a router that rebooted may have given the port to
// someone else meanwhile.
func (d *igd) upnpUnmap(ctx context.Context, proto string, port uint16, self netip.Addr, desc string) error {
	if len(d.wan) == 0 {
		return fmt.Errorf("the IGD %s has no WAN connection service", d.location)
	}
	w := d.wan[0]
	P := upnpProto(proto)
	_, client, _, oldDesc, _, err := w.GetSpecificPortMappingEntryCtx(ctx, "", port, P)
	if err != nil {
		if upnpCode(err) != 0 {
			return nil // gone already (714), or the router will not say
		}
		return err
	}
	if client != self.String() || oldDesc != desc {
		return nil // not ours (any more)
	}
	if err := w.DeletePortMappingCtx(ctx, "", port, P); err != nil && upnpCode(err) != 714 {
		return upnpError(err)
	}
	return nil
}

// upnpPinhole opens or renews the inbound IPv6 pinhole to self:port and
// returns the ID the router gave it.
//
// It renews with AddPinhole, never UpdatePinhole: a pinhole's ID is only
// the router's handle of the moment. miniupnpd numbers pinholes from 1
// again after a restart, so an ID the box kept may name another port's
// pinhole by then, and UpdatePinhole would renew that one and report
// success while the box's own pinhole is gone. AddPinhole names the
// pinhole by what it is (protocol, address, port); a router that already
// has it renews it and returns its ID (miniupnpd looks it up by that
// 5-tuple).
func (d *igd) upnpPinhole(ctx context.Context, proto string, port uint16, self netip.Addr, lease time.Duration) (uint16, error) {
	if len(d.fw) == 0 {
		return 0, errNoIPv6Control
	}
	fw := d.fw[0]
	enabled, inbound, err := fw.GetFirewallStatusCtx(ctx)
	switch {
	case err != nil:
		return 0, upnpError(err)
	case !enabled:
		return 0, errFirewallOff
	case !inbound:
		return 0, errors.New("the router's IPv6 firewall allows no inbound pinholes (WANIPv6FirewallControl says InboundPinholeAllowed = false)")
	}
	secs := uint32(min(max(lease, time.Second), 24*time.Hour) / time.Second)
	id, err := fw.AddPinholeCtx(ctx, "", 0, self.String(), port, uint16(pcpProto(proto)), secs)
	if err != nil {
		return 0, upnpError(err)
	}
	return id, nil
}

// upnpClosePinhole closes the box's pinhole to self:port. For the same
// reason as in upnpPinhole it does not trust a kept ID: it asks the
// router for the pinhole's current ID (an AddPinhole of a second, which
// returns the existing pinhole's ID, or opens one that closes by itself
// at once) and deletes that.
func (d *igd) upnpClosePinhole(ctx context.Context, proto string, port uint16, self netip.Addr) error {
	if len(d.fw) == 0 {
		return errNoIPv6Control
	}
	fw := d.fw[0]
	id, err := fw.AddPinholeCtx(ctx, "", 0, self.String(), port, uint16(pcpProto(proto)), 1)
	if err != nil {
		return upnpError(err)
	}
	if err := fw.DeletePinholeCtx(ctx, id); err != nil && upnpCode(err) != 704 {
		return upnpError(err)
	}
	return nil
}

var (
	errNoIPv6Control = errors.New("the IGD offers no IPv6 firewall control (WANIPv6FirewallControl)")
	errFirewallOff   = errors.New("the router's IPv6 firewall is off, so nothing needs opening")
)
