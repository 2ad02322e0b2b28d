package rfc2136

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/bindtest"
	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// ask queries the BIND server directly.
func ask(t *testing.T, srv *bindtest.Server, name string, qtype uint16) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, srv.Addr.String())
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	var out []string
	for _, rr := range r.Answer {
		out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	slices.Sort(out)
	return out
}

func provider(srv *bindtest.Server) *Provider {
	return &Provider{Server: srv.Addr.String(), Zone: srv.Zone, KeyName: srv.KeyName, KeyAlgorithm: srv.KeyAlgorithm, Secret: srv.Secret}
}

// TestAgainstBIND walks through what ddns and ACME do with a real BIND 9:
// a story of sequential steps.
func TestAgainstBIND(t *testing.T) {
	srv := bindtest.Start(t, bindtest.Options{Zone: "example.com.", Records: []string{
		"derp 60 IN A 192.0.2.1",
		"www 300 IN A 192.0.2.80",
		"www 300 IN AAAA 2001:db8::80",
	}})
	p := provider(srv)
	ctx := context.Background()

	t.Run("zone", func(t *testing.T) {
		z, err := p.ZoneFor(ctx, "derp.example.com")
		if err != nil || z != "example.com." {
			t.Fatalf("ZoneFor: got %q, %v; want example.com.", z, err)
		}
		if _, err := p.ZoneFor(ctx, "derp.example.net"); err == nil {
			t.Errorf("ZoneFor(derp.example.net) in zone example.com.: got no error")
		}
	})

	t.Run("replace A", func(t *testing.T) {
		_, err := p.SetRecords(ctx, "example.com.", []libdns.Record{
			libdns.Address{Name: "derp", TTL: time.Minute, IP: netip.MustParseAddr("203.0.113.9")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ask(t, srv, "derp.example.com.", dns.TypeA), []string{"203.0.113.9"}; !slices.Equal(got, want) {
			t.Errorf("A after SetRecords: got %v, want %v", got, want)
		}
	})

	t.Run("add AAAA next to A", func(t *testing.T) {
		_, err := p.SetRecords(ctx, "example.com.", []libdns.Record{
			libdns.Address{Name: "derp", TTL: time.Minute, IP: netip.MustParseAddr("2001:db8:1::10")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ask(t, srv, "derp.example.com.", dns.TypeAAAA), []string{"2001:db8:1::10"}; !slices.Equal(got, want) {
			t.Errorf("AAAA: got %v, want %v", got, want)
		}
		if got, want := ask(t, srv, "derp.example.com.", dns.TypeA), []string{"203.0.113.9"}; !slices.Equal(got, want) {
			t.Errorf("A was touched: got %v, want %v", got, want)
		}
	})

	t.Run("other names untouched", func(t *testing.T) {
		if got, want := ask(t, srv, "www.example.com.", dns.TypeA), []string{"192.0.2.80"}; !slices.Equal(got, want) {
			t.Errorf("www A: got %v, want %v", got, want)
		}
		if got, want := ask(t, srv, "www.example.com.", dns.TypeAAAA), []string{"2001:db8::80"}; !slices.Equal(got, want) {
			t.Errorf("www AAAA: got %v, want %v", got, want)
		}
	})

	t.Run("ACME TXT append and delete", func(t *testing.T) {
		txt := libdns.TXT{Name: "_acme-challenge.derp", TTL: time.Minute, Text: "token-value-1"}
		txt2 := libdns.TXT{Name: "_acme-challenge.derp", TTL: time.Minute, Text: "token-value-2"}
		if _, err := p.AppendRecords(ctx, "example.com.", []libdns.Record{txt, txt2}); err != nil {
			t.Fatal(err)
		}
		if got, want := ask(t, srv, "_acme-challenge.derp.example.com.", dns.TypeTXT), []string{`"token-value-1"`, `"token-value-2"`}; !slices.Equal(got, want) {
			t.Errorf("TXT: got %v, want %v", got, want)
		}
		if _, err := p.DeleteRecords(ctx, "example.com.", []libdns.Record{txt}); err != nil {
			t.Fatal(err)
		}
		if got, want := ask(t, srv, "_acme-challenge.derp.example.com.", dns.TypeTXT), []string{`"token-value-2"`}; !slices.Equal(got, want) {
			t.Errorf("TXT after delete: got %v, want %v", got, want)
		}
	})

	t.Run("never deletes addresses", func(t *testing.T) {
		for _, r := range []libdns.Record{
			libdns.Address{Name: "derp", IP: netip.MustParseAddr("203.0.113.9")},
			libdns.RR{Name: "derp", Type: "A"},
			libdns.TXT{Name: "_acme-challenge.derp"}, // no value: would be a wildcard
		} {
			if _, err := p.DeleteRecords(ctx, "example.com.", []libdns.Record{r}); err == nil {
				t.Errorf("DeleteRecords(%+v): got no error", r)
			}
		}
		if got, want := ask(t, srv, "derp.example.com.", dns.TypeA), []string{"203.0.113.9"}; !slices.Equal(got, want) {
			t.Errorf("A: got %v, want %v", got, want)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		bad := provider(srv)
		bad.Secret = "c2VjcmV0LXRoYXQtaXMtd3Jvbmctc2VjcmV0LXRoYXQ="
		_, err := bad.SetRecords(ctx, "example.com.", []libdns.Record{
			libdns.Address{Name: "derp", TTL: time.Minute, IP: netip.MustParseAddr("198.51.100.66")},
		})
		if err == nil || !strings.Contains(err.Error(), "TSIG") {
			t.Errorf("SetRecords with a wrong secret: got %v, want an error about the TSIG key", err)
		}
		if got, want := ask(t, srv, "derp.example.com.", dns.TypeA), []string{"203.0.113.9"}; !slices.Equal(got, want) {
			t.Errorf("A after a refused update: got %v, want %v", got, want)
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		bad := provider(srv)
		bad.KeyName = "someone-else."
		_, err := bad.SetRecords(ctx, "example.com.", []libdns.Record{
			libdns.Address{Name: "derp", TTL: time.Minute, IP: netip.MustParseAddr("198.51.100.66")},
		})
		if err == nil || !strings.Contains(err.Error(), "TSIG") {
			t.Errorf("SetRecords with an unknown key: got %v, want an error about the TSIG key", err)
		}
	})

	t.Run("check key", func(t *testing.T) {
		if err := provider(srv).CheckKey(ctx, "derp.example.com"); err != nil {
			t.Errorf("right key: %v", err)
		}
		bad := provider(srv)
		bad.Secret = "c2VjcmV0LXRoYXQtaXMtd3Jvbmctc2VjcmV0LXRoYXQ="
		if err := bad.CheckKey(ctx, "derp.example.com"); err == nil || !strings.Contains(err.Error(), "TSIG") {
			t.Errorf("wrong secret: got %v, want a TSIG error", err)
		}
		bad = provider(srv)
		bad.KeyName = "someone-else."
		if err := bad.CheckKey(ctx, "derp.example.com"); err == nil || !strings.Contains(err.Error(), "TSIG") {
			t.Errorf("unknown key: got %v, want a TSIG error", err)
		}
	})

	if got := p.Updates(); got != 4 {
		t.Errorf("Updates: got %d, want 4", got)
	}
}

// TestSetRecordsRefusesSecondRecord: with two A records for the name (one
// the user added by hand), SetRecords refuses, as the Cloudflare provider
// does, instead of replacing the whole set: homederp never deletes.
func TestSetRecordsRefusesSecondRecord(t *testing.T) {
	srv := bindtest.Start(t, bindtest.Options{Zone: "example.com.", Records: []string{
		"derp 60 IN A 192.0.2.1",
		"derp 60 IN A 192.0.2.2",
	}})
	p := provider(srv)
	_, err := p.SetRecords(context.Background(), "example.com.", []libdns.Record{
		libdns.Address{Name: "derp", TTL: time.Minute, IP: netip.MustParseAddr("203.0.113.9")},
	})
	if err == nil || !strings.Contains(err.Error(), "several") {
		t.Errorf("SetRecords over two A records: got %v, want an error about several records", err)
	}
	if got, want := ask(t, srv, "derp.example.com.", dns.TypeA), []string{"192.0.2.1", "192.0.2.2"}; !slices.Equal(got, want) {
		t.Errorf("A after a refused SetRecords: got %v, want %v", got, want)
	}
	if got := p.Updates(); got != 0 {
		t.Errorf("UPDATE messages sent: got %d, want 0", got)
	}
}

// dialHook runs before every connection the provider opens.
type dialHook struct {
	n      int
	before func(n int)
}

func (d *dialHook) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n++
	d.before(d.n)
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// TestSetRecordsRace: a second A record added between SetRecords' read and
// its update makes the server refuse the update (the prerequisite no
// longer holds) rather than delete the new record.
func TestSetRecordsRace(t *testing.T) {
	srv := bindtest.Start(t, bindtest.Options{Zone: "example.com.", Records: []string{"derp 60 IN A 192.0.2.1"}})
	p := provider(srv)
	ctx := context.Background()
	p.Net = &dialHook{before: func(n int) {
		if n == 2 { // the update, after the read
			if _, err := provider(srv).AppendRecords(ctx, "example.com.", []libdns.Record{
				libdns.Address{Name: "derp", TTL: time.Minute, IP: netip.MustParseAddr("192.0.2.2")},
			}); err != nil {
				t.Errorf("adding the second record: %v", err)
			}
		}
	}}
	_, err := p.SetRecords(ctx, "example.com.", []libdns.Record{
		libdns.Address{Name: "derp", TTL: time.Minute, IP: netip.MustParseAddr("203.0.113.9")},
	})
	if err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Errorf("SetRecords racing an added record: got %v, want an error about records that changed", err)
	}
	if got, want := ask(t, srv, "derp.example.com.", dns.TypeA), []string{"192.0.2.1", "192.0.2.2"}; !slices.Equal(got, want) {
		t.Errorf("A after the race: got %v, want %v", got, want)
	}
	if got := p.Requests(); got != 2 {
		t.Errorf("messages sent: got %d, want 2 (the read and the update)", got)
	}
}
