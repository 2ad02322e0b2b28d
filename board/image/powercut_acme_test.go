package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/internal/testimage"
	"github.com/homederp/homederp/internal/bindtest"
	"github.com/homederp/homederp/internal/netnstest"
	"github.com/homederp/homederp/internal/pebbletest"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/relay/relaytest"
)

// The certificate-issuance kind of power cut needs the DNS-01 world of
// TestACMEDNSMode (appliance/acme_test.go) inside the VM's namespace,
// where the guest reaches the namespace's loopback at slirp's 10.0.2.2:
//
//   - a real BIND 9 on the namespace's 127.0.0.1:53, authoritative for
//     example.com (so for the box's derp.example.com), with the TSIG key
//     the box's rfc2136 provider signs its updates with. The box keeps its
//     default resolvers: the namespace's resolv.conf names BIND, so
//     slirp's DNS (10.0.2.3, what the guest's DHCP hands out) forwards
//     the box's lookups there, and the zone's NS record says 10.0.2.2.
//     certmagic finds the zone and checks the challenge record at that
//     NS, as on a real line.
//   - a Pebble for each ACME cut, listening in the namespace, at
//     https://acme.example.com:<port>/dir for the guest (BIND has
//     acme.example.com → 10.0.2.2; httptest's certificate is valid for
//     *.example.com). A new CA each time makes every cut a first
//     issuance: certmagic keeps each CA's certificates apart, so the
//     previous cut's certificate is not simply loaded again. The box
//     trusts the CA's API through cert.acme_ca_roots, as a user of
//     step-ca does; Pebble's VA looks up the challenge in BIND through a
//     host port forwarded into the namespace.
//   - the time, over NTP from the namespace (BIND has
//     {0,1,2,3}.gokrazy.pool.ntp.org → 10.0.2.2), as a box on a real
//     line gets it within seconds of booting. Without it a power cut
//     sets the box's clock back: gokrazy's ntp loads the time it saved at
//     the last clean shutdown (a `board update`'s reboot) over the RTC's
//     on every boot, and with nothing to correct it BIND refuses the
//     TSIG-signed updates (BADTIME, beyond 5 minutes) and a certificate
//     Pebble just issued is not yet valid on the box.
const (
	slirpHost  = "10.0.2.2" // the namespace's loopback, as the guest reaches it
	acmeZone   = "example.com."
	acmeCAHost = "acme.example.com"
)

// acmeBed is the DNS and the CAs of the certificate-issuance cuts.
type acmeBed struct {
	t     *testing.T
	ns    *netnstest.NS
	bind  *bindtest.Server
	vaDNS string // named for Pebble's VA: a host port forwarded into the namespace, e.g. 127.0.0.1:40053

	ca    *pebbletest.Server // the latest ACME cut's CA; nil before the first
	caURL string             // its directory as the guest reaches it, e.g. https://acme.example.com:41234/dir
	trust *acmeTrust
}

// newACMEBed starts BIND in ns. It must run before qemu starts in ns:
// `ip netns exec` binds the namespace's resolv.conf over /etc/resolv.conf
// of the programs it starts, and slirp reads it there.
func newACMEBed(t *testing.T, ns *netnstest.NS) *acmeBed {
	testenv.NeedCommand(t, "named")
	dir := filepath.Join("/etc/netns", ns.Name)
	if err := os.MkdirAll(dir, 0755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		os.Remove("/etc/netns") // only if no other namespace has one
	})
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0644); err != nil {
		t.Fatal(err)
	}
	e := &acmeBed{t: t, ns: ns}
	e.bind = bindtest.Start(t, bindtest.Options{
		Zone:    acmeZone,
		Records: []string{acmeCAHost + ". 60 IN A " + slirpHost},
		Port:    53,
		Others: map[string][]string{"gokrazy.pool.ntp.org.": {
			"0 60 IN A " + slirpHost, "1 60 IN A " + slirpHost, "2 60 IN A " + slirpHost, "3 60 IN A " + slirpHost,
		}},
		NSAddrs: []netip.Addr{netip.MustParseAddr(slirpHost)},
		Command: ns.Command,
		Dial:    ns.Dialer().DialContext,
	})
	e.vaDNS = fmt.Sprintf("127.0.0.1:%d", proxyInto(t, ns, 53))
	pc := ns.MustListenPacket("udp4", "127.0.0.1:123")
	t.Cleanup(func() { pc.Close() })
	go serveNTP(pc)
	return e
}

// nameForm is the setup's step 1 with the rfc2136 provider: the hostname
// and the TSIG key that answers the DNS-01 challenge.
func (e *acmeBed) nameForm(hostname string) url.Values {
	return formOf("hostname", hostname, "ddns.interval", "5m", "ddns.provider", "rfc2136", "ddns.ipv4", "on",
		"ddns.rfc2136.server", slirpHost+":53", "ddns.rfc2136.zone", acmeZone,
		"ddns.rfc2136.key_name", e.bind.KeyName, "ddns.rfc2136.key_algorithm", e.bind.KeyAlgorithm, "secret", e.bind.Secret)
}

// newCA starts the next cut's Pebble in the namespace.
func (e *acmeBed) newCA(hostname string) {
	l := e.ns.MustListen("tcp4", "127.0.0.1:0")
	e.ca = pebbletest.Start(e.t, pebbletest.Options{DNSServer: e.vaDNS, Listener: l})
	u, err := url.Parse(e.ca.DirectoryURL)
	if err != nil {
		e.t.Fatal(err)
	}
	u.Host = net.JoinHostPort(acmeCAHost, fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	e.caURL = u.String()
	e.trust = &acmeTrust{roots: e.ca.Roots, name: hostname}
}

// certForm is step 4 switching to acme-dns against the current CA.
func (e *acmeBed) certForm() url.Values {
	return formOf("cert.mode", "acme-dns", "cert.acme_ca", "production", "cert.acme_ca_url", e.caURL,
		"cert.acme_ca_roots", string(e.ca.APIRootPEM()))
}

// selfSignedForm is step 4 back to the pinned self-signed certificate.
func selfSignedForm() url.Values {
	return formOf("cert.mode", "self-signed", "cert.acme_ca", "production")
}

// acmeTrust is what a client of a box in mode acme-dns trusts: the CA's
// root, for the box's name.
type acmeTrust struct {
	roots *x509.CertPool
	name  string // e.g. derp.example.com
}

// verify checks that chain (leaf first, as the DERP port sent it) is
// whole and leads to the CA's root for the name.
func (a *acmeTrust) verify(chain []*x509.Certificate) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: a.roots, Intermediates: inter, DNSName: a.name})
	return err
}

// connect dials the box's relay by name, trusting the CA, with the
// connection going to the DERP port in ns.
func (a *acmeTrust) connect(t testing.TB, ns *netnstest.NS, host string, port int) *relaytest.Client {
	t.Helper()
	c, err := relaytest.ConnectVia(t, fmt.Sprintf("https://%s:%d/derp", host, port), a.roots, func(ctx context.Context, _, _ string) (net.Conn, error) {
		return ns.Dialer().DialContext(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", derpPort))
	})
	if err != nil {
		t.Fatalf("derphttp to %s trusting the ACME CA: %v", host, err)
	}
	return c
}

// servesACME reports (nil) whether the DERP port serves a whole chain to
// the current CA's root for the box's name, in one TLS handshake.
func (b *cutBox) servesACME(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := b.v.ns.Dialer().DialContext(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", derpPort))
	if err != nil {
		return err
	}
	defer conn.Close()
	return tls.Client(conn, &tls.Config{ServerName: b.hostname, RootCAs: b.acme.ca.Roots}).HandshakeContext(ctx)
}

// awaitACME waits up to d for the DERP port to serve the CA's
// certificate.
func (b *cutBox) awaitACME(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		err := b.servesACME(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the DERP port does not serve %s's certificate within %v: %w", b.acme.caURL, d, err)
		case <-time.After(probePeriod):
		}
	}
}

// boxCert is the certificate part of the relay's status, as the status
// page's JSON has it.
type boxCert struct {
	CertMode   string
	CertIssuer string
	CertError  string
	CertPinned bool
}

func (b *cutBox) certStatus(ctx context.Context) (*boxCert, error) {
	resp, body, err := b.web.Get(ctx, "/", "application/json")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET / as JSON: %s", resp.Status)
	}
	var st struct {
		Relay *boxCert `json:"relay"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, fmt.Errorf("GET / as JSON: %w", err)
	}
	if st.Relay == nil {
		return nil, errors.New("GET / as JSON: no relay status")
	}
	return st.Relay, nil
}

// afterACMECut is the rest of an ACME cut's boot, after the common
// checks: the box (re)issues, or serves the stored certificate, and ends
// up serving the CA's certificate with a status that says so plainly;
// then it goes back to the pinned self-signed certificate (tailscaled's
// DERP map from testcontrol pins it) for the cuts that follow. It
// returns the outcome's words.
func (b *cutBox) afterACMECut(ctx context.Context, i int, rec *cutRecord, mode config.CertMode, ordersAtCut int64) []string {
	t := b.t
	var outcome []string
	if mode != config.CertACMEDNS {
		// The save never reached /perm: make it again.
		outcome = append(outcome, "the save enabling ACME was lost; saved again")
		if err := b.web.Submit(ctx, "/setup/cert", b.acme.certForm()); err != nil {
			t.Fatalf("cut %d (%s): saving acme-dns again after the boot: %v", i, rec.Kind, err)
		}
	}
	if err := b.awaitACME(ctx, acmeBound); err != nil {
		st, _ := b.certStatus(ctx)
		t.Fatalf("cut %d (%s): after the boot: %v; relay status %+v\n%s", i, rec.Kind, err, st, b.v.serviceLog("/user/appliance"))
	}
	rec.ACMEAfterS = b.v.since().Seconds()
	orders := b.acme.ca.NewOrders() - ordersAtCut
	switch {
	case orders == 0:
		outcome = append(outcome, "the stored ACME certificate served again")
	case rec.Finished:
		t.Errorf("cut %d (%s): the box served the CA's certificate before the cut, yet ordered %d new ones after the boot (the stored one did not last)", i, rec.Kind, orders)
	default:
		outcome = append(outcome, fmt.Sprintf("issued after the boot (%d orders)", orders))
	}
	// What the web UI says now: the CA's certificate, no pin, no error.
	var st *boxCert
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		st, err = b.certStatus(ctx)
		if err == nil && !st.CertPinned && st.CertError == "" || time.Now().After(deadline) {
			break
		}
	}
	switch {
	case err != nil:
		t.Errorf("cut %d (%s): %v", i, rec.Kind, err)
	case st.CertMode != string(config.CertACMEDNS) || st.CertPinned || st.CertError != "" || !strings.HasPrefix(st.CertIssuer, "Pebble"):
		t.Errorf("cut %d (%s): relay status while the CA's certificate serves: mode %q, pinned %v, error %q, issuer %q; want acme-dns, false, none, Pebble…", i, rec.Kind, st.CertMode, st.CertPinned, st.CertError, st.CertIssuer)
	}
	if _, key := b.v.derpCheck(t); key != b.key {
		t.Errorf("cut %d (%s): with the CA's certificate: DERP key %s, want %s", i, rec.Kind, key, b.key)
	}

	// Back to the pinned certificate, with the first boot's pin.
	if err := b.web.Submit(ctx, "/setup/cert", selfSignedForm()); err != nil {
		t.Fatalf("cut %d (%s): back to self-signed: %v", i, rec.Kind, err)
	}
	var pin string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if _, pin, err = b.v.fetchMap(10 * time.Second); err == nil && pin == b.pin {
			return outcome
		}
	}
	t.Fatalf("cut %d (%s): back in self-signed mode the box does not serve pin %s within a minute: pin %q (%v)", i, rec.Kind, b.pin, pin, err)
	return nil
}

// acmeBound is how long a box may take after a boot to serve the CA's
// certificate: an attempt cut short by the power may fail once, and the
// box tries again a minute later (acmedns.DefaultRetry).
const acmeBound = 3 * time.Minute

// storedACME checks the ACME files (certmagic's account, certificates,
// keys and metadata under /perm/homederp/acme) as the next boot finds
// them: in a copy of /perm with its journal replayed, as the box's
// kernel replays it at mount. Every file must be whole: JSON that
// parses, PEM certificates and keys that parse. Lock files (certmagic's
// own, which it treats as stale when a lock's owner is gone) and
// renameio's temporary ".name123" files are counted, not judged: the box
// never reads them as state.
func storedACME(t testing.TB, img string) (summary string, err error) {
	t.Helper()
	l, _ := disk.NewLayout(testImageSize)
	perm := testimage.Extract(t, img, l.Part(disk.Perm).Offset(), l.Part(disk.Perm).Size())
	defer os.Remove(perm)
	if out, err := exec.Command("e2fsck", "-y", "-E", "journal_only", perm).CombinedOutput(); err != nil {
		if ee := new(exec.ExitError); !errors.As(err, &ee) || ee.ExitCode() >= 4 {
			return "", fmt.Errorf("e2fsck -E journal_only on a copy of /perm: %v\n%s", err, out)
		}
	}
	dir := t.TempDir()
	defer os.RemoveAll(dir)
	if out, err := exec.Command("debugfs", "-R", "rdump /homederp/acme "+dir, perm).CombinedOutput(); err != nil {
		return "", fmt.Errorf("debugfs rdump /homederp/acme: %v\n%s", err, out)
	}
	var n, certs, keys, docs, locks, temps int
	var bad []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := d.Name()
		switch {
		case strings.HasSuffix(name, ".lock"):
			locks++
			return nil
		case strings.HasPrefix(name, "."):
			temps++
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		var why error
		switch filepath.Ext(name) {
		case ".json":
			docs++
			if !json.Valid(b) {
				why = errors.New("not whole JSON")
			}
		case ".crt":
			certs++
			why = wholeCerts(b)
		case ".key":
			keys++
			why = wholeKey(b)
		default:
			if len(b) == 0 {
				why = errors.New("empty")
			}
		}
		if why != nil {
			bad = append(bad, fmt.Sprintf("%s (%d bytes): %v", rel, len(b), why))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	summary = fmt.Sprintf("%d ACME files whole (%d certificates, %d keys, %d JSON); %d locks, %d temporary files", n-len(bad), certs, keys, docs, locks, temps)
	if len(bad) > 0 {
		return summary, fmt.Errorf("ACME files on /perm that are not whole:\n%s", strings.Join(bad, "\n"))
	}
	return summary, nil
}

// wholeCerts checks a PEM file of certificates: at least one, all
// parsing, nothing else.
func wholeCerts(b []byte) error {
	n := 0
	for rest := b; len(strings.TrimSpace(string(rest))) > 0; n++ {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return errors.New("not whole PEM certificates")
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return err
		}
	}
	if n == 0 {
		return errors.New("no certificate")
	}
	return nil
}

// wholeKey checks a PEM private key, in any of the forms certmagic
// writes.
func wholeKey(b []byte) error {
	blk, rest := pem.Decode(b)
	if blk == nil || len(strings.TrimSpace(string(rest))) > 0 {
		return errors.New("not one whole PEM block")
	}
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return nil
	}
	return fmt.Errorf("a PEM %q block that is no private key", blk.Type)
}

// serveNTP answers SNTP requests on pc with the host's clock, as a
// stratum-1 server, until pc is closed.
func serveNTP(pc net.PacketConn) {
	buf := make([]byte, 512)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 48 || buf[0]&7 != 3 { // not a client's request
			continue
		}
		var r [48]byte
		r[0] = 4<<3 | 4 // no leap second, version 4, server
		r[1] = 1        // stratum 1
		r[2] = buf[2]   // the client's poll interval
		r[3] = 0xec     // precision 2^-20 s
		copy(r[12:16], "LOCL")
		now := ntpTime(time.Now())
		binary.BigEndian.PutUint64(r[16:], now) // reference time
		copy(r[24:32], buf[40:48])              // origin: the request's transmit time
		binary.BigEndian.PutUint64(r[32:], now) // receive time
		binary.BigEndian.PutUint64(r[40:], ntpTime(time.Now()))
		pc.WriteTo(r[:], addr)
	}
}

// ntpTime is t as an NTP timestamp: seconds since 1900 and a binary
// fraction.
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	return uint64(t.Unix()+unixToNTP)<<32 | uint64(t.Nanosecond())<<32/1e9
}
