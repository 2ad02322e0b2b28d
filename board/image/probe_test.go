package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/board/update"
	"github.com/homederp/homederp/relay/relaytest"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
)

// probePeriod is how often the boot probes ask: the resolution of the
// boot figures.
const probePeriod = 250 * time.Millisecond

// stunOnce sends one STUN binding request and waits up to wait for the
// answer.
func (v *vm) stunOnce(wait time.Duration) (mapped string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := v.ns.Dialer().DialContext(ctx, "udp4", fmt.Sprintf("127.0.0.1:%d", stunPort))
	if err != nil {
		return "", err
	}
	defer c.Close()
	tx := stun.NewTxID()
	if _, err := c.Write(stun.Request(tx)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	got, addr, err := stun.ParseResponse(buf[:n])
	if err != nil {
		return "", err
	}
	if got != tx {
		return "", fmt.Errorf("STUN answer for another transaction")
	}
	return addr.String(), nil
}

// fetchMap fetches the DERP map the box serves on its DERP port and
// checks that the port's certificate is the one the map pins, or, for a
// box in certificate mode acme-dns (v.acme), a map without a pin and a
// whole chain from the port to v.acme's roots for its name. It returns
// the map's region and the pin ("" for the CA's certificate).
func (v *vm) fetchMap(timeout time.Duration) (*tailcfg.DERPRegion, string, error) {
	resp, err := v.client(timeout).Get(fmt.Sprintf("https://127.0.0.1:%d/derpmap.json", derpPort))
	if err != nil {
		return nil, "", fmt.Errorf("GET /derpmap.json: %w", err)
	}
	defer resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return nil, "", fmt.Errorf("DERP port: no TLS")
	}
	var m tailcfg.DERPMap
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, "", fmt.Errorf("decoding /derpmap.json: %w", err)
	}
	if len(m.Regions) != 1 {
		return nil, "", fmt.Errorf("/derpmap.json: %d regions, want 1", len(m.Regions))
	}
	var region *tailcfg.DERPRegion
	for _, r := range m.Regions {
		region = r
	}
	if len(region.Nodes) == 0 {
		return nil, "", fmt.Errorf("/derpmap.json: no nodes")
	}
	served := fmt.Sprintf("sha256-raw:%x", sha256.Sum256(resp.TLS.PeerCertificates[0].Raw))
	if pin := region.Nodes[0].CertName; pin == "" && v.acme != nil {
		if err := v.acme.verify(resp.TLS.PeerCertificates); err != nil {
			return nil, "", fmt.Errorf("the map pins nothing, and the DERP port's certificate: %w", err)
		}
		return region, "", nil
	} else if pin != served {
		return nil, "", fmt.Errorf("the map pins %q, the DERP port serves %q", pin, served)
	}
	return region, served, nil
}

// bootTimes are when, since power-on, the relay first answered.
type bootTimes struct {
	stun time.Duration // a STUN binding request is answered
	derp time.Duration // the DERP port serves TLS with the certificate its map pins
}

// relayTimes probes STUN and the DERP port every probePeriod, side by
// side, until both answer, for at most d. The times are since power-on.
func (v *vm) relayTimes(d time.Duration) (bootTimes, error) {
	type result struct {
		at  time.Duration
		err error
	}
	poll := func(probe func() error) <-chan result {
		ch := make(chan result, 1)
		go func() {
			deadline := time.Now().Add(d)
			var last error
			for time.Now().Before(deadline) {
				start := time.Now()
				if last = probe(); last == nil {
					ch <- result{at: start.Sub(v.started)}
					return
				}
				time.Sleep(probePeriod - min(time.Since(start), probePeriod))
			}
			ch <- result{err: fmt.Errorf("no answer within %v: %v", d, last)}
		}()
		return ch
	}
	stunc := poll(func() error { _, err := v.stunOnce(probePeriod); return err })
	derpc := poll(func() error { _, _, err := v.fetchMap(2 * time.Second); return err })
	var bt bootTimes
	for _, p := range []struct {
		name string
		ch   <-chan result
		at   *time.Duration
	}{{"STUN", stunc, &bt.stun}, {"DERP TLS with the pinned certificate", derpc, &bt.derp}} {
		select {
		case r := <-p.ch:
			if r.err != nil {
				return bt, fmt.Errorf("%s: %w", p.name, r.err)
			}
			*p.at = r.at
		case err := <-v.done:
			v.done <- err
			return bt, fmt.Errorf("qemu exited while waiting for %s: %v", p.name, err)
		}
	}
	return bt, nil
}

// waitRelay is relayTimes, stopping t on failure.
func (v *vm) waitRelay(t testing.TB, d time.Duration) bootTimes {
	t.Helper()
	bt, err := v.relayTimes(d)
	if err != nil {
		t.Fatalf("%v\n%s", err, v.tail())
	}
	return bt
}

// derpCheck fetches the DERP map the box serves, checks the pin, and
// relays a packet between two real derphttp clients dialing as the map
// says (with the address replaced by the forwarded port). It returns the
// pin ("" for an ACME CA's certificate: see fetchMap) and the server's
// DERP key.
func (v *vm) derpCheck(t testing.TB) (pin, serverKey string) {
	t.Helper()
	region, pin, err := v.fetchMap(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	node := *region.Nodes[0]
	if node.DERPPort != derpPort || node.STUNPort != stunPort {
		t.Errorf("map ports: DERP %d STUN %d, want %d and %d", node.DERPPort, node.STUNPort, derpPort, stunPort)
	}
	var a, b *relaytest.Client
	if pin == "" {
		// The CA's certificate: dial the name, as tailscaled does with
		// a map without a pin, trusting the CA.
		a, b = v.acme.connect(t, v.ns, node.HostName, node.DERPPort), v.acme.connect(t, v.ns, node.HostName, node.DERPPort)
	} else {
		r := v.dialableRegion(t, region)
		a, b = relaytest.Connect(t, r), relaytest.Connect(t, r)
	}
	relaytest.Exchange(t, a, b)
	return pin, a.ServerPublicKey().String()
}

// dialableRegion is region with its node's address replaced by a host
// loopback port forwarded into the VM's namespace.
func (v *vm) dialableRegion(t testing.TB, region *tailcfg.DERPRegion) *tailcfg.DERPRegion {
	node := *region.Nodes[0]
	node.IPv4, node.DERPPort = "127.0.0.1", v.proxy(t, derpPort)
	r := *region
	r.Nodes = []*tailcfg.DERPNode{&node}
	return &r
}

// boxMemory is the memory of the whole box, as gokrazy reports it.
type boxMemory struct {
	rss        map[string]int64 // bytes by program: "init", "/user/appliance", ...
	memTotal   int64            // bytes the kernel manages
	memUsed    int64            // MemTotal - MemAvailable
	memAvail   int64
	rssOfBoxes int64 // the sum of rss
}

// rssRe matches gokrazy's status page, which shows each program's
// resident set size (from /proc/<pid>/statm) as e.g.
// title="/user/appliance uses 21.3 MiB RSS".
var rssRe = regexp.MustCompile(`title="(\S+) uses ([0-9.]+) MiB RSS"`)

// memory reads gokrazy's status: /proc/meminfo from its JSON, and each
// program's RSS from its overview page (the JSON has no RSS). Stopped
// services (tailscale, the CLI) have none.
func (v *vm) memory(ctx context.Context) (*boxMemory, error) {
	client := v.client(20 * time.Second)
	var st struct {
		Meminfo map[string]int64
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.baseURL(), nil)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("gokrazy status JSON: %w", err)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, v.baseURL(), nil)
	resp, err = client.Do(req)
	if err != nil {
		return nil, err
	}
	page, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	m := &boxMemory{
		rss:      map[string]int64{},
		memTotal: st.Meminfo["MemTotal"], // bytes: gokrazy converts meminfo's kB
		memAvail: st.Meminfo["MemAvailable"],
	}
	m.memUsed = m.memTotal - m.memAvail
	for _, sm := range rssRe.FindAllSubmatch(page, -1) {
		mib, err := strconv.ParseFloat(string(sm[2]), 64)
		if err != nil {
			return nil, err
		}
		n := int64(mib * (1 << 20))
		m.rss[string(sm[1])] = n
		m.rssOfBoxes += n
	}
	if m.memTotal == 0 || m.rss["init"] == 0 || m.rss["/user/appliance"] == 0 {
		return nil, fmt.Errorf("gokrazy status: no memory figures (meminfo %v, RSS %v)", st.Meminfo, m.rss)
	}
	return m, nil
}

func (m *boxMemory) String() string {
	var names []string
	for n := range m.rss {
		names = append(names, n)
	}
	sort.Strings(names)
	s := fmt.Sprintf("RSS %.1f MiB (", mib(m.rssOfBoxes))
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %.1f", n, mib(m.rss[n]))
	}
	return s + fmt.Sprintf("); kernel: %.1f MiB used of %.1f MiB", mib(m.memUsed), mib(m.memTotal))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// status fetches gokrazy's status.
func (v *vm) status(t testing.TB) *update.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := update.GetStatus(ctx, v.baseURL(), v.client(20*time.Second))
	if err != nil {
		t.Fatalf("gokrazy status on port %d: %v", gokrazyPort, err)
	}
	return st
}

// logContains reads the service's stderr from gokrazy's log stream (its
// recent lines first) until a line contains want, for at most d.
func (v *vm) logContains(path, want string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.baseURL()+"log?stream=stderr&path="+path, nil)
	resp, err := v.client(0).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /log?path=%s: %s", path, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	var seen []string
	for sc.Scan() {
		if strings.Contains(sc.Text(), want) {
			return nil
		}
		seen = append(seen, sc.Text())
	}
	return fmt.Errorf("%s's log has no %q within %v (%v); it has:\n%s", path, want, d, sc.Err(), strings.Join(seen, "\n"))
}
