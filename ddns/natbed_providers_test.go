package ddns_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/alidns"
	"github.com/homederp/homederp/ddns/alidnstest"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/cloudflare"
	"github.com/homederp/homederp/ddns/cloudflaretest"
	"github.com/homederp/homederp/ddns/ddnstest"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/ddns/tencentcloud"
	"github.com/homederp/homederp/ddns/tencentcloudtest"
	"github.com/homederp/homederp/internal/bindtest"
	"github.com/homederp/homederp/internal/testenv"
)

// bedProviders are the DNS providers the bed runs with.
var bedProviders = []string{"rfc2136", "cloudflare", "tencentcloud", "alidns"}

// bedProvider is one DNS provider in the bed with its call counter.
type bedProvider struct {
	name  string
	p     ddns.Provider
	calls func() int64 // API requests, or messages to the primary (reads and UPDATEs), so far
	auth  netip.AddrPort

	// For the API fakes: what the provider holds for a name and type on
	// its default line, as "value ttl N"; the TTL the updater's records
	// get there; the requests by action or route.
	records func(name, typ string) []string
	ttl     int
	routes  func() map[string]int
	// breaks are the ways the provider can fail; each returns the repair.
	breaks map[string]func() (repair func())
}

func (b *natBed) provider(t testing.TB, name string) bedProvider {
	switch name {
	case "rfc2136":
		return b.bind(t)
	case "cloudflare":
		return b.cloudflare(t)
	case "tencentcloud":
		return b.tencentcloud(t)
	case "alidns":
		return b.alidns(t)
	}
	t.Fatalf("no bed provider %q", name)
	return bedProvider{}
}

func (b *natBed) bind(t testing.TB) bedProvider {
	testenv.NeedCommand(t, "named")
	srv := bindtest.Start(t, bindtest.Options{
		Zone:    "example.com.",
		Addrs:   []netip.Addr{netip.MustParseAddr(bindIP), netip.MustParseAddr(bindIP6)},
		Port:    53,
		Command: b.inet.Command,
		Dial:    b.inet.Dialer().DialContext,
		Records: []string{"www 60 IN A 192.0.2.80"},
	})
	p := &rfc2136.Provider{Server: srv.Addr.String(), Zone: srv.Zone, KeyName: srv.KeyName, KeyAlgorithm: srv.KeyAlgorithm, Secret: srv.Secret, Net: b.home.Dialer()}
	return bedProvider{name: "rfc2136", p: p, calls: p.Requests, auth: srv.Addr}
}

func (b *natBed) cloudflare(t testing.TB) bedProvider {
	fake := cloudflaretest.New(t, cloudflaretest.Options{Listener: b.inet.MustListen("tcp4", cfIP+":80")})
	fake.AddZone("example.com")
	fake.AddRecord("example.com", "www", "A", "192.0.2.80", 600, false)
	dnsAddr := fake.StartDNS(t, cloudflaretest.DNSOptions{
		UDP: b.inet.MustListenPacket("udp4", cfIP+":53"),
		TCP: b.inet.MustListen("tcp4", cfIP+":53"),
	})
	p := cloudflare.New(fake.AddToken(cloudflaretest.Token{Zones: []string{"example.com"}}), apiclient.Options{HTTP: fake.ClientDialing(b.home.Dialer().DialContext)})
	return bedProvider{name: "cloudflare", p: p, calls: p.Client().Requests, auth: dnsAddr, ttl: 60, routes: fake.RequestsByRoute,
		records: func(name, typ string) []string {
			var out []string
			for _, r := range fake.Records("example.com", name, typ) {
				if !r.Proxied {
					out = append(out, fmt.Sprintf("%s ttl %d", r.Content, r.TTL))
				}
			}
			return out
		}}
}

// bedMaxWait is the DNSPod and AliDNS clients' longest wait inside one
// call: enough for two retries (after 1 s and 2 s), which the first call
// after an address change needs, because the NAT drops the keep-alive
// connection to the API, and short enough that a provider that stays
// down fails a check in 3 s (the provider packages test the retries
// themselves).
const bedMaxWait = 2 * time.Second

func (b *natBed) tencentcloud(t testing.TB) bedProvider {
	return keyPairBed(b, t, "tencentcloud", tcIP, tencentcloud.DefaultLine, tencentcloudtest.New, tencentcloud.New,
		tencentcloudtest.Fault{Code: "InternalError", Message: "An internal error has occurred."},
		tencentcloudtest.Fault{Status: 200, Body: "<html>upstream error</html>"})
}

func (b *natBed) alidns(t testing.TB) bedProvider {
	return keyPairBed(b, t, "alidns", aliIP, alidns.DefaultLine, alidnstest.New, alidns.New,
		alidnstest.Fault{Status: 503, Code: "ServiceUnavailable", Message: "The request has failed due to a temporary failure of the server."},
		alidnstest.Fault{Status: 200, Body: "<html>upstream error</html>"})
}

// keyPairFake is the fake of DNSPod or AliDNS, with its faults F.
type keyPairFake[F any] interface {
	ddnstest.KeyPairFake
	SetDown(*F)
}

// apiProvider is a provider package's Provider, with its API client.
type apiProvider interface {
	ddns.Provider
	Client() *apiclient.Client
}

// keyPairBed is the bed's DNSPod or AliDNS: its fake (from newFake) on the
// bed's Internet at ip, holding example.com with www's A record, and the
// provider (from newProvider) with a key of that domain. down and garbage
// are the fake's answers while its API is down or behind a broken proxy.
func keyPairBed[F any, S keyPairFake[F], P apiProvider](b *natBed, t testing.TB, name, ip, line string,
	newFake func(testing.TB, ddnstest.KeyPairOptions) S, newProvider func(id, secret string, o apiclient.Options) P,
	down, garbage F) bedProvider {
	fake := newFake(t, ddnstest.KeyPairOptions{Listener: b.inet.MustListen("tcp4", ip+":80")})
	fake.AddDomain("example.com")
	fake.AddRecord("example.com", "www", "A", "192.0.2.80", 600)
	dnsAddr := fake.StartDNS(t, ddnstest.AuthorityOptions{
		UDP: b.inet.MustListenPacket("udp4", ip+":53"),
		TCP: b.inet.MustListen("tcp4", ip+":53"),
	})
	id, secret := fake.AddKey(ddnstest.Key{Domains: []string{"example.com"}})
	p := newProvider(id, secret, apiclient.Options{HTTP: fake.ClientDialing(b.home.Dialer().DialContext), MaxWait: bedMaxWait})
	fails := func(f F) func() func() {
		return func() func() {
			fake.SetDown(&f)
			return func() { fake.SetDown(nil) }
		}
	}
	return bedProvider{name: name, p: p, calls: p.Client().Requests, auth: dnsAddr, ttl: 600, routes: fake.RequestsByRoute,
		records: func(name, typ string) []string { return ddnstest.OnLine(fake.Records("example.com", name, typ), line) },
		breaks: map[string]func() func(){
			"provider down":            fails(down),
			"provider answers garbage": fails(garbage),
			"key revoked": func() func() {
				fake.DisableKey(id)
				return nil
			},
		}}
}

// TestNATBedFailures: with DNSPod and AliDNS in the bed, whatever breaks
// at the provider while the line's address changes, no record is deleted
// or set to a wrong address, the check's error says what broke, and once
// the provider is repaired the next check publishes the new address.
func TestNATBedFailures(t *testing.T) {
	testenv.NeedLong(t)
	revoked := map[string]string{"tencentcloud": "does not know this SecretId", "alidns": "AccessKey is disabled"}
	for _, name := range []string{"tencentcloud", "alidns"} {
		t.Run(name, func(t *testing.T) {
			b := newNATBed(t, bedOptions{})
			bp := b.provider(t, name)
			u, err := ddns.New(b.config(t, bp))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := u.Check(ctx); err != nil {
				t.Fatalf("first publication: %v", err)
			}
			wan := "203.0.113.10"
			theA := func(t *testing.T, want string) {
				t.Helper()
				if got := bp.records("derp", "A"); !slices.Equal(got, []string{want + " ttl 600"}) {
					t.Errorf("derp A: got %q, want exactly %s", got, want)
				}
				if got := bp.records("www", "A"); !slices.Equal(got, []string{"192.0.2.80 ttl 600"}) {
					t.Errorf("www A was touched: %q", got)
				}
			}
			theA(t, wan)
			for i, tt := range []struct{ brk, wantErr string }{
				{"provider down", "having trouble"},
				{"provider answers garbage", "not its API's JSON"},
				{"key revoked", revoked[name]}, // last: only a new key repairs it
			} {
				ok := t.Run(tt.brk, func(t *testing.T) {
					next := fmt.Sprintf("203.0.113.%d", 30+i)
					b.setWAN(wan, next)
					repair := bp.breaks[tt.brk]()
					before := bp.calls()
					err := u.Check(ctx)
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("check: got %v, want an error containing %q", err, tt.wantErr)
					}
					theA(t, wan)
					if st := u.Status(); st.LastError == "" || len(st.ServedA) != 1 || st.ServedA[0].String() != wan {
						t.Errorf("status: LastError %q, served A %v; want the error and still %s", st.LastError, st.ServedA, wan)
					}
					calls := bp.calls() - before
					if repair == nil {
						report(t, fmt.Sprintf("ddns %s, %s: check failed with %d API calls: %v", name, tt.brk, calls, err))
						return
					}
					repair()
					before = bp.calls()
					if err := u.Check(ctx); err != nil {
						t.Fatalf("check after the repair: %v", err)
					}
					theA(t, next)
					report(t, fmt.Sprintf("ddns %s, %s: check failed with %d API calls; after the repair it published %s with %d calls", name, tt.brk, calls, next, bp.calls()-before))
					wan = next
				})
				if !ok {
					return // the bed's address is no longer what the next step expects
				}
			}
		})
	}
}
