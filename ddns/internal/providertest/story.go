package providertest

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/libdns/libdns"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// derp is the A and AAAA record of derp with a one-minute TTL.
func derp(ip ...string) []libdns.Record {
	var out []libdns.Record
	for _, a := range ip {
		out = append(out, libdns.Address{Name: "derp", TTL: time.Minute, IP: addr(a)})
	}
	return out
}

// SetRecords tells the story of the updater's and the ACME solver's
// writes at env's fake: an address set and changed is the only one of its
// name and type, with the TTL the zone allows; the user's other records
// are untouched; several records of a name are refused, not reduced; a
// read-only key changes nothing; an ACME challenge record comes and goes
// without taking the user's TXT record along; and nothing but a TXT
// record with a value is ever deleted.
func SetRecords[F any](t *testing.T, env Env[F]) {
	o, _ := Options(env.HTTP)
	p := env.New(o)
	ctx := context.Background()
	for _, ips := range [][]string{{"203.0.113.9", "2001:db8::9"}, {"203.0.113.10", "2001:db8::10"}} {
		if _, err := p.SetRecords(ctx, Zone+".", derp(ips...)); err != nil {
			t.Fatalf("setting %v: %v", ips, err)
		}
	}
	env.checkHeld(t, "derp", "A", "203.0.113.10")
	env.checkHeld(t, "derp", "AAAA", "2001:db8::10")
	env.checkHeld(t, "www", "A", "192.0.2.80")
	if got, want := p.Client().Requests(), int64(env.Fake.Requests()); got != want {
		t.Errorf("client counted %d requests, fake served %d", got, want)
	}

	t.Run("duplicates", func(t *testing.T) {
		env.AddRecord("dup", "A", "192.0.2.1")
		env.AddRecord("dup", "A", "192.0.2.2")
		_, err := p.SetRecords(ctx, Zone+".", []libdns.Record{libdns.Address{Name: "dup", TTL: time.Minute, IP: addr("203.0.113.9")}})
		WantErr(t, "several records", err, "never deletes")
		if got := len(env.Records("dup", "A")); got != 2 {
			t.Errorf("dup records: got %d, want 2 untouched", got)
		}
	})
	t.Run("read-only key", func(t *testing.T) {
		_, err := env.ReadOnly(o).SetRecords(ctx, Zone+".", derp("198.51.100.1"))
		env.ReadOnlyErr(t, err)
		env.checkHeld(t, "derp", "A", "203.0.113.10")
	})
	t.Run("ACME challenge", func(t *testing.T) {
		txt := libdns.TXT{Name: "_acme-challenge.derp", Text: "token-1"}
		if _, err := p.AppendRecords(ctx, Zone+".", []libdns.Record{txt}); err != nil {
			t.Fatal(err)
		}
		if got := env.Records("_acme-challenge.derp", "TXT"); len(got) != 1 || !strings.HasPrefix(got[0], "token-1 ttl ") {
			t.Fatalf("challenge TXT: got %q, want token-1", got)
		}
		env.AddRecord("_acme-challenge.derp", "TXT", "someone-elses")
		if _, err := p.DeleteRecords(ctx, Zone+".", []libdns.Record{txt}); err != nil {
			t.Fatal(err)
		}
		env.checkHeld(t, "_acme-challenge.derp", "TXT", "someone-elses")
	})
	t.Run("delete guard", func(t *testing.T) {
		for _, r := range []libdns.Record{
			libdns.Address{Name: "derp", IP: addr("203.0.113.10")},
			libdns.Address{Name: "derp"}, // zero IP: libdns would delete every A
			libdns.RR{Name: "derp", Type: "AAAA"},
			libdns.TXT{Name: "_acme-challenge"},
		} {
			if _, err := p.DeleteRecords(ctx, Zone+".", []libdns.Record{r}); err == nil {
				t.Errorf("DeleteRecords(%#v): got no error", r)
			}
		}
		env.checkHeld(t, "derp", "A", "203.0.113.10")
		env.checkHeld(t, "derp", "AAAA", "2001:db8::10")
	})
}

// ZoneFor finds the zone of a deep name once: asking again costs no
// request.
func ZoneFor[F any](t *testing.T, env Env[F]) {
	o, _ := Options(env.HTTP)
	p := env.New(o)
	ctx := context.Background()
	if z, err := p.ZoneFor(ctx, "derp.home.example.com."); err != nil || z != Zone+"." {
		t.Fatalf("ZoneFor: got %q, %v; want %s.", z, err, Zone)
	}
	n := env.Fake.Requests()
	if z, err := p.ZoneFor(ctx, "derp.home.example.com"); err != nil || z != Zone+"." {
		t.Fatalf("ZoneFor again: got %q, %v", z, err)
	}
	if got := env.Fake.Requests() - n; got != 0 {
		t.Errorf("second ZoneFor made %d requests, want 0 (cached)", got)
	}
}
