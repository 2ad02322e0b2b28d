// Package providertest is the story every DNS provider that speaks an API
// (Cloudflare, DNSPod, AliDNS) must pass at its fake: setting records
// (one per name and type, the user's records untouched, duplicates refused,
// a read-only key refused, the ACME challenge, nothing but TXT deleted),
// finding and caching the zone, and the failure matrix of retries,
// throttling, outages and garbage. Each provider's test instantiates it
// with its fake; what only one vendor does stays in that vendor's test.
package providertest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/libdns/libdns"
)

// Zone is the zone every Env holds.
const Zone = "example.com"

// Provider is what the story calls: each provider package's Provider.
type Provider interface {
	libdns.RecordSetter
	libdns.RecordAppender
	libdns.RecordDeleter
	ZoneFor(ctx context.Context, hostname string) (string, error)
	Check(ctx context.Context, hostname string) error
	Client() *apiclient.Client
}

// Fake is what the story needs of every provider fake (F is its Fault
// type).
type Fake[F any] interface {
	Requests(route ...string) int
	Writes() int
	FailNext(n int, f F)
	SetDown(f *F)
	Close()
}

// Env is a provider under test at its fake, which holds the zone
// example.com with the record "www A 192.0.2.80" (TTL Env.TTL) and a key
// of the whole account.
type Env[F any] struct {
	Vendor string // as the provider's messages name it, e.g. "AliDNS"
	Fake   Fake[F]
	HTTP   *http.Client // sends the vendor's API host to the fake
	// New returns the provider with the account's key; ReadOnly with a
	// new key that may read the records but not change them.
	New, ReadOnly func(apiclient.Options) Provider
	// TTL (seconds) is what the records of the story get, for a TTL of a
	// minute: 60, or the zone's minimum (600 at DNSPod and AliDNS).
	TTL int
	// AddRecord stores a record of example.com with TTL on the default
	// line, as if the user made it in the console.
	AddRecord func(name, typ, value string)
	// Records describes the records of name and type in example.com on
	// the default line, as served, in the form "value ttl N".
	Records func(name, typ string) []string
	// ReadOnlyErr checks the error of a write with the ReadOnly key.
	ReadOnlyErr func(t *testing.T, err error)
}

// checkHeld reports unless name's typ records are exactly values, with
// the story's TTL.
func (e Env[F]) checkHeld(t *testing.T, name, typ string, values ...string) {
	t.Helper()
	var want []string
	for _, v := range values {
		want = append(want, fmt.Sprintf("%s ttl %d", v, e.TTL))
	}
	if got := e.Records(name, typ); !slices.Equal(got, want) {
		t.Errorf("%s %s: got %q, want %q", name, typ, got, want)
	}
}

// Waits records the waits of a client's backoff instead of sleeping.
type Waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *Waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

// All returns the waits so far.
func (w *Waits) All() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.d)
}

// String is the waits so far, e.g. "[1s 2s]".
func (w *Waits) String() string { return fmt.Sprint(w.All()) }

// Options returns client options for a fake reached through client, with
// retries waiting up to 30 s, recorded in the Waits instead of slept.
func Options(client *http.Client) (apiclient.Options, *Waits) {
	w := &Waits{}
	return apiclient.Options{HTTP: client, MaxWait: 30 * time.Second, Sleep: w.sleep}, w
}

// WantErr reports unless err contains every one of want, or, if want is
// empty or "", unless err is nil.
func WantErr(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if want = slices.DeleteFunc(want, func(w string) bool { return w == "" }); len(want) == 0 {
		if err != nil {
			t.Errorf("%s: got %v, want success", what, err)
		}
		return
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("%s: got %v, want an error containing %q", what, err, w)
			return
		}
	}
}
