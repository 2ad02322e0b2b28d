// Package routerbed is a home line in network namespaces with a real
// router program on it: Debian's miniupnpd (the nftables build, with
// UPnP-IGD v2, NAT-PMP and PCP) on a router that masquerades IPv4 and
// firewalls inbound IPv6, as home routers do.
//
//	home (the box)                 router                          inet (the Internet)
//	eth0 192.168.1.10/24 ───────── lan0 192.168.1.1/24
//	     2001:db8:1::10/64              2001:db8:1::1/64
//	                                    wan0 192.0.3.10/24 ──────── eth0 192.0.3.1/24
//	                                         2001:db8:ff::10/64          2001:db8:ff::1/64
//	                                    nftables: masquerade,       (Internet clients dial from here)
//	                                    forward policy drop,
//	                                    miniupnpd's chains
//
// The router's WAN address is not in a documentation range because
// miniupnpd refuses to map ports on an address it considers reserved
// (which includes 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24); the
// address exists only inside these namespaces, which have no route out.
package routerbed

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/netnstest"
	"github.com/homederp/homederp/internal/testenv"
)

// Addresses in the bed.
var (
	BoxLAN   = netip.MustParseAddr("192.168.1.10")
	Gateway  = netip.MustParseAddr("192.168.1.1")
	WAN      = netip.MustParseAddr("192.0.3.10")
	Box6     = netip.MustParseAddr("2001:db8:1::10")
	Gateway6 = netip.MustParseAddr("2001:db8:1::1")
	Inet4    = netip.MustParseAddr("192.0.3.1")      // the Internet side: clients dial from here
	Inet6    = netip.MustParseAddr("2001:db8:ff::1") // and over IPv6 from here
)

// Bed is the three namespaces and the router's miniupnpd.
type Bed struct {
	Home, Router, Inet *netnstest.NS

	t      testing.TB
	bin    string
	conf   string
	leases string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// New builds the bed; prefix starts the namespace names (e.g. "hd-pm").
// miniupnpd is not running yet: call Start.
func New(t testing.TB, prefix string) *Bed {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "ip")
	testenv.NeedCommand(t, "nft")
	bin := testenv.NeedCommand(t, "miniupnpd")
	b := &Bed{
		t:      t,
		bin:    bin,
		Home:   netnstest.New(t, prefix+"-home"),
		Router: netnstest.New(t, prefix+"-rtr"),
		Inet:   netnstest.New(t, prefix+"-inet"),
	}
	netnstest.Link(t, b.Home, "eth0", b.Router, "lan0")
	netnstest.Link(t, b.Router, "wan0", b.Inet, "eth0")
	b.Home.AddAddr("eth0", BoxLAN.String()+"/24")
	b.Home.AddAddr("eth0", Box6.String()+"/64")
	b.Home.IP("route", "add", "default", "via", Gateway.String())
	b.Home.IP("-6", "route", "add", "default", "via", Gateway6.String())

	b.Router.AddAddr("lan0", Gateway.String()+"/24")
	b.Router.AddAddr("lan0", Gateway6.String()+"/64")
	b.Router.AddAddr("wan0", WAN.String()+"/24")
	b.Router.AddAddr("wan0", "2001:db8:ff::10/64")
	b.Router.IP("route", "add", "default", "via", "192.0.3.1")
	b.Router.IP("-6", "route", "add", "default", "via", "2001:db8:ff::1")
	b.Router.Sysctl("net.ipv4.ip_forward", "1")
	b.Router.Sysctl("net.ipv6.conf.all.forwarding", "1")
	b.Router.Nft(routerRules)

	b.Inet.AddAddr("eth0", "192.0.3.1/24")
	b.Inet.AddAddr("eth0", "2001:db8:ff::1/64")
	b.Inet.IP("-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:ff::10")

	dir := t.TempDir()
	b.conf = filepath.Join(dir, "miniupnpd.conf")
	b.leases = filepath.Join(dir, "leases")
	if err := os.WriteFile(b.conf, []byte(fmt.Sprintf(miniupnpdConf, b.leases)), 0644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop() })
	return b
}

// SetWAN gives the router another WAN address, e.g. "100.64.0.10" for a
// line behind the carrier's NAT, with the Internet side at .1 of its
// /24. Call it before Start: miniupnpd reads the address when it starts.
func (b *Bed) SetWAN(addr string) {
	b.t.Helper()
	a := netip.MustParseAddr(addr)
	gw := netip.AddrFrom4([4]byte{a.As4()[0], a.As4()[1], a.As4()[2], 1})
	b.Router.IP("addr", "del", WAN.String()+"/24", "dev", "wan0")
	b.Router.IP("addr", "add", a.String()+"/24", "dev", "wan0")
	b.Inet.IP("addr", "add", gw.String()+"/24", "dev", "eth0")
	b.Router.IP("route", "replace", "default", "via", gw.String())
}

// routerRules are the router's nftables rules: NAT for the LAN, a
// firewall that lets nothing in that the LAN did not ask for, and the
// empty chains miniupnpd fills (its defaults: table "filter", chains
// "miniupnpd", "prerouting_miniupnpd", "postrouting_miniupnpd").
const routerRules = `table inet filter {
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "lan0" oifname "wan0" accept
		icmpv6 type { echo-request, nd-neighbor-solicit, nd-neighbor-advert } accept
		jump miniupnpd
	}
	chain miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		jump postrouting_miniupnpd
		ip saddr 192.168.1.0/24 oifname "wan0" masquerade
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
}
`

// miniupnpdConf enables all three protocols on the LAN side. Lifetimes
// down to 1 s are allowed so tests can renew quickly; secure_mode lets a
// client map only to itself, as routers ship.
const miniupnpdConf = `ext_ifname=wan0
listening_ip=lan0
http_port=0
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
min_lifetime=1
max_lifetime=86400
system_uptime=no
notify_interval=60
uuid=3d3c1f4e-1f2a-4b6c-9d8e-0123456789ab
lease_file=%s
allow 1024-65535 192.168.1.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`

// Start runs miniupnpd on the router, in the foreground with its log
// going to the test's log, and waits until it serves NAT-PMP/PCP.
func (b *Bed) Start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		b.t.Fatal("routerbed: miniupnpd is running already")
	}
	cmd := b.Router.Command(context.Background(), b.bin, "-d", "-f", b.conf, "-P", filepath.Join(filepath.Dir(b.conf), "miniupnpd.pid"))
	lw := &logWriter{t: b.t, ready: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = lw, lw
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("starting miniupnpd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	select {
	case <-lw.ready:
	case <-exited:
		b.t.Fatalf("miniupnpd exited at start")
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		b.t.Fatalf("miniupnpd did not start listening within 10 s")
	}
	b.cmd, b.exited = cmd, exited
}

// Stop stops miniupnpd with SIGTERM, as a router's service manager would.
func (b *Bed) Stop() {
	b.stop(syscall.SIGTERM)
}

// Crash kills miniupnpd and clears its chains and lease file, as a
// router that reboots loses every mapping.
func (b *Bed) Crash() {
	b.t.Helper()
	b.stop(syscall.SIGKILL)
	for _, chain := range []string{"miniupnpd", "prerouting_miniupnpd", "postrouting_miniupnpd"} {
		b.Router.Run("nft", "flush", "chain", "inet", "filter", chain)
	}
	os.Remove(b.leases)
}

func (b *Bed) stop(sig syscall.Signal) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(sig)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
	}
	b.cmd = nil
}

// Redirect is one inbound IPv4 forward miniupnpd installed.
type Redirect struct {
	Proto string         // "tcp" or "udp"
	Port  uint16         // the external port on the WAN address
	To    netip.AddrPort // e.g. 192.168.1.10:12345
}

func (r Redirect) String() string { return fmt.Sprintf("%s %d → %v", r.Proto, r.Port, r.To) }

var (
	// miniupnpd writes raw payload matches: the IPv4 protocol byte
	// (@nh,72,8), the IPv6 next header (@nh,48,8) and destination
	// address (@nh,192,128).
	redirectRE = regexp.MustCompile(`@nh,72,8 0x(6|11) th dport (\d+) dnat ip to ([0-9.]+):(\d+)`)
	pinholeRE  = regexp.MustCompile(`th dport (\d+) @nh,192,128 0x([0-9a-f]{32}) @nh,48,8 0x(6|11) accept`)
)

// Redirects lists the forwards in miniupnpd's NAT chain: what the router
// actually does with inbound traffic, whatever any protocol said.
func (b *Bed) Redirects() []Redirect {
	b.t.Helper()
	out := b.Router.Run("nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd")
	var rs []Redirect
	for _, m := range redirectRE.FindAllStringSubmatch(out, -1) {
		port, _ := strconv.Atoi(m[2])
		toPort, _ := strconv.Atoi(m[4])
		rs = append(rs, Redirect{protoName(m[1]), uint16(port), netip.AddrPortFrom(netip.MustParseAddr(m[3]), uint16(toPort))})
	}
	return rs
}

// Pinhole is one inbound IPv6 pinhole in miniupnpd's filter chain.
type Pinhole struct {
	Proto string
	To    netip.AddrPort
}

// Pinholes lists the IPv6 pinholes in miniupnpd's filter chain.
func (b *Bed) Pinholes() []Pinhole {
	b.t.Helper()
	out := b.Router.Run("nft", "list", "chain", "inet", "filter", "miniupnpd")
	var ps []Pinhole
	for _, m := range pinholeRE.FindAllStringSubmatch(out, -1) {
		port, _ := strconv.Atoi(m[1])
		var a [16]byte
		hex.Decode(a[:], []byte(m[2]))
		ps = append(ps, Pinhole{protoName(m[3]), netip.AddrPortFrom(netip.AddrFrom16(a), uint16(port))})
	}
	return ps
}

func protoName(hexNum string) string {
	if hexNum == "6" {
		return "tcp"
	}
	return "udp"
}

// Rules returns miniupnpd's chains as nft prints them, for failure
// messages.
func (b *Bed) Rules() string {
	b.t.Helper()
	var sb strings.Builder
	for _, chain := range []string{"prerouting_miniupnpd", "miniupnpd"} {
		sb.WriteString(b.Router.Run("nft", "list", "chain", "inet", "filter", chain))
	}
	return sb.String()
}

// noise is what miniupnpd's debug log repeats for every SSDP search and
// netlink call; it is left out of the test log.
var noise = []string{"table_cb", "is not a IGD pinhole", "setting timeout", "SSDP", "M-SEARCH", "ST: ", "USN: ",
	"CACHE-CONTROL", "EXT:", "SERVER: ", "LOCATION: ", "OPT: ", "01-NLS", "BOOTID", "CONFIGID", "Single search found",
	"level=0 type=", "ifindex = ", "Received UDP Packet", "get_lan_for_peer", "ifname=lan0", "get_src_for_route_to",
	"timestamp entry", "HTTP connection from", "HTTP REQUEST", "sending event", "upnp_event", "Location: ", "MX: ",
	"Man: ", "Host: ", "HOST: ", "MAN: ", "Unknown udp packet received", "port mapping rejected"}

// logWriter sends miniupnpd's log to the test log and notices when it
// listens.
type logWriter struct {
	t     testing.TB
	mu    sync.Mutex
	ready chan struct{}
	done  bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	s := strings.TrimRight(string(p), "\n")
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !slices.ContainsFunc(noise, func(n string) bool { return strings.Contains(l, n) }) {
			keep = append(keep, l)
		}
	}
	keep = slices.DeleteFunc(keep, func(l string) bool { return strings.TrimSpace(l) == "" || strings.HasSuffix(strings.TrimSpace(l), ":") })
	if len(keep) > 0 {
		w.t.Logf("miniupnpd: %s", strings.Join(keep, "\n"))
	}
	w.mu.Lock()
	if !w.done && strings.Contains(s, "Listening for NAT-PMP/PCP traffic") {
		w.done = true
		close(w.ready)
	}
	w.mu.Unlock()
	return len(p), nil
}
