package providertest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/ddnstest"
)

// KeyPairFake is a fake of a provider whose keys are pairs (DNSPod,
// AliDNS), with its faults.
type KeyPairFake[F any] interface {
	ddnstest.KeyPairFake
	FailNext(n int, f F)
	SetDown(f *F)
}

// KeyPair is a provider whose key is a pair of an ID and a secret, and
// whose records live on resolution lines (DNSPod, AliDNS), with its fake.
// Its methods are the story at that fake.
type KeyPair[F any] struct {
	Vendor string // as the provider's messages name it, e.g. "AliDNS"
	// Fake starts the vendor's fake with o; New is the provider
	// package's New.
	Fake func(t *testing.T, o ddnstest.KeyPairOptions) KeyPairFake[F]
	New  func(id, secret string, o apiclient.Options) Provider
	// Line is the default resolution line, OtherLine another one, e.g.
	// "default" and "telecom".
	Line, OtherLine string
	// ZoneCalls are the actions that list the domains and describe one,
	// e.g. "DescribeDomains" and "DescribeDomainInfo".
	ZoneCalls [2]string
	// Skew is how far the box's clock is off (ahead if positive) in
	// ClockSkew: more than the API allows, e.g. an hour.
	Skew   time.Duration
	Errors KeyErrors
}

// KeyErrors are what the provider's errors say (substrings) when ...
type KeyErrors struct {
	UnknownID   string   // ... the key ID is unknown
	WrongSecret string   // ... the secret is not the key's
	Disabled    string   // ... the key is disabled
	ReadOnly    []string // ... the key may not write
	Clock       string   // ... the box's clock is off by Skew
	Throttled   string   // ... the API throttles the account
	// Replay is the code of a retry refused for reusing a signature
	// ("" = the API cannot tell): a retry must be signed afresh.
	Replay string
}

// fake starts a fake holding example.com with www's A record.
func (kp KeyPair[F]) fake(t *testing.T, o ddnstest.KeyPairOptions) KeyPairFake[F] {
	fake := kp.Fake(t, o)
	fake.AddDomain(Zone)
	fake.AddRecord(Zone, "www", "A", "192.0.2.80", 600)
	return fake
}

// env starts a fake (see fake) with a key of the whole account.
func (kp KeyPair[F]) env(t *testing.T, o ddnstest.KeyPairOptions) (Env[F], KeyPairFake[F]) {
	fake := kp.fake(t, o)
	id, secret := fake.AddKey(ddnstest.Key{})
	return Env[F]{
		Vendor: kp.Vendor,
		Fake:   fake,
		HTTP:   fake.Client(),
		New:    func(o apiclient.Options) Provider { return kp.New(id, secret, o) },
		ReadOnly: func(o apiclient.Options) Provider {
			id, secret := fake.AddKey(ddnstest.Key{ReadOnly: true})
			return kp.New(id, secret, o)
		},
		TTL:         600,
		AddRecord:   func(name, typ, value string) { fake.AddRecord(Zone, name, typ, value, 600) },
		Records:     func(name, typ string) []string { return ddnstest.OnLine(fake.Records(Zone, name, typ), kp.Line) },
		ReadOnlyErr: func(t *testing.T, err error) { WantErr(t, "read-only key", err, kp.Errors.ReadOnly...) },
	}, fake
}

// CheckCase is a key checked when the user saves it.
type CheckCase struct {
	Name       string
	ID, Secret string
	Host       string // "" = the key alone
	WantErr    string // substring; "" = success
}

// Check checks good and bad keys, alone and with a hostname, plus the
// vendor's own cases, and that no check writes anything.
func (kp KeyPair[F]) Check(t *testing.T, vendor ...CheckCase) {
	fake := kp.fake(t, ddnstest.KeyPairOptions{})
	fake.AddDomain("example.org")
	key := func(k ddnstest.Key) [2]string {
		id, secret := fake.AddKey(k)
		return [2]string{id, secret}
	}
	good, disabled := key(ddnstest.Key{}), key(ddnstest.Key{})
	fake.DisableKey(disabled[0])
	other, scoped := key(ddnstest.Key{Domains: []string{"example.org"}}), key(ddnstest.Key{Domains: []string{Zone}})
	unknown := good[0][:4] + strings.Repeat("x", len(good[0])-4) // the vendor's prefix, e.g. "LTAI"
	cases := append([]CheckCase{
		{"good", good[0], good[1], "", ""},
		{"good with zone", good[0], good[1], "derp.example.com", ""},
		{"deep name", good[0], good[1], "a.b.derp.example.com", ""},
		{"apex", good[0], good[1], Zone, ""},
		{"unknown ID", unknown, good[1], "", kp.Errors.UnknownID},
		{"wrong secret", good[0], strings.Repeat("y", len(good[1])), "", kp.Errors.WrongSecret},
		{"disabled key", disabled[0], disabled[1], "", kp.Errors.Disabled},
		{"key for this domain only", scoped[0], scoped[1], "derp.example.com", ""},
		{"key for another domain", other[0], other[1], "derp.example.com", "no zone for derp.example.com that this " + kp.Vendor + " key may see"},
		{"domain not in account", good[0], good[1], "derp.example.net", "no zone for derp.example.net"},
	}, vendor...)
	for _, tt := range cases {
		o, _ := Options(fake.Client())
		WantErr(t, tt.Name, kp.New(tt.ID, tt.Secret, o).Check(context.Background(), tt.Host), tt.WantErr)
	}
	if fake.Writes() != 0 {
		t.Errorf("checks wrote %d records, want 0", fake.Writes())
	}
}

// ClockSkew: a box whose clock is off hears that its clock is wrong, not
// that its key is.
func (kp KeyPair[F]) ClockSkew(t *testing.T) {
	env, _ := kp.env(t, ddnstest.KeyPairOptions{Now: func() time.Time { return time.Now().Add(-kp.Skew) }})
	o, _ := Options(env.HTTP)
	WantErr(t, "Check with the clock off by "+kp.Skew.String(), env.New(o).Check(context.Background(), ""), "clock", kp.Errors.Clock)
}

// ZoneFor finds the zone with one list of the domains and one
// description, once.
func (kp KeyPair[F]) ZoneFor(t *testing.T) {
	env, fake := kp.env(t, ddnstest.KeyPairOptions{})
	ZoneFor(t, env)
	if got := fake.RequestsByRoute(); got[kp.ZoneCalls[0]] != 1 || got[kp.ZoneCalls[1]] != 1 || fake.Requests() != 2 {
		t.Errorf("requests: got %v, want one %s and one %s", got, kp.ZoneCalls[0], kp.ZoneCalls[1])
	}
}

// SetRecords is the story of SetRecords with the user's records of the
// same name on another line, which are never touched, and an unchanged
// address, which costs no write.
func (kp KeyPair[F]) SetRecords(t *testing.T) {
	env, fake := kp.env(t, ddnstest.KeyPairOptions{})
	fake.AddRecordOnLine(Zone, "derp", "A", "198.51.100.77", 600, kp.OtherLine)
	fake.AddRecordOnLine(Zone, "derp", "AAAA", "2001:db8::77", 600, kp.OtherLine)
	SetRecords(t, env)
	for typ, v := range map[string]string{"A": "198.51.100.77", "AAAA": "2001:db8::77"} {
		if got := ddnstest.OnLine(fake.Records(Zone, "derp", typ), kp.OtherLine); len(got) != 1 || got[0] != v+" ttl 600" {
			t.Errorf("derp %s on the line %s: got %q, want %s kept", typ, kp.OtherLine, got, v)
		}
	}
	t.Run("no change writes nothing", func(t *testing.T) {
		o, _ := Options(env.HTTP)
		w := fake.Writes()
		if _, err := env.New(o).SetRecords(context.Background(), Zone+".", derp("203.0.113.10", "2001:db8::10")); err != nil {
			t.Fatalf("setting the values that are there: %v", err)
		}
		if got := fake.Writes() - w; got != 0 {
			t.Errorf("writes: got %d more, want 0", got)
		}
	})
}

// Retries is the failure matrix of Retries at the fake.
func (kp KeyPair[F]) Retries(t *testing.T, cases []RetryCase[F]) {
	Retries(t, func(t *testing.T) Env[F] { env, _ := kp.env(t, ddnstest.KeyPairOptions{}); return env }, cases)
}

// RateLimit: past the fake's per-second limit the client gives up with a
// RateLimitError carrying the vendor's code, each retry signed afresh.
func (kp KeyPair[F]) RateLimit(t *testing.T) {
	env, _ := kp.env(t, ddnstest.KeyPairOptions{RateLimit: 2})
	o, waits := Options(env.HTTP)
	o.MaxRetries = 1
	p := env.New(o)
	var err error
	for range 4 {
		if err = p.Check(context.Background(), ""); err != nil {
			break
		}
	}
	var rl *apiclient.RateLimitError
	if !errors.As(err, &rl) || !strings.Contains(err.Error(), kp.Errors.Throttled) {
		t.Errorf("got %v (waits %v), want a RateLimitError with %s's %s", err, waits, kp.Vendor, kp.Errors.Throttled)
	}
	if kp.Errors.Replay != "" && err != nil && strings.Contains(err.Error(), kp.Errors.Replay) {
		t.Errorf("a retry reused its signature: %v", err)
	}
}
