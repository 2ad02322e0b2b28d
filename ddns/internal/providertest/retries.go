package providertest

import (
	"context"
	"testing"
)

// RetryCase is a way the API fails while the provider sets a record.
type RetryCase[F any] struct {
	Name  string
	Fault F
	// N is how many answers are Fault; 0 = every answer (the API is
	// down).
	N        int
	WantErr  string // substring; "" = success after retrying
	Waits    string // the backoff, e.g. "[1s 2s]"
	Requests int    // requests of the call; 0 = not checked
}

// Retries changes derp's A record at a fake that fails as each case says,
// and checks the call's error, its backoff and its requests, and that
// derp holds the new address afterwards, or, if the call failed, still
// the old one. Last, the API is unreachable: the call fails with a
// connection error after three backoffs.
func Retries[F any](t *testing.T, start func(*testing.T) Env[F], cases []RetryCase[F]) {
	ctx := context.Background()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			env := start(t)
			env.AddRecord("derp", "A", "192.0.2.1")
			o, waits := Options(env.HTTP)
			p := env.New(o)
			if _, err := p.ZoneFor(ctx, "derp."+Zone); err != nil {
				t.Fatal(err)
			}
			before := env.Fake.Requests()
			if tt.N > 0 {
				env.Fake.FailNext(tt.N, tt.Fault)
			} else {
				env.Fake.SetDown(&tt.Fault)
			}
			_, err := p.SetRecords(ctx, Zone+".", derp("203.0.113.9"))
			env.Fake.SetDown(nil)
			WantErr(t, "SetRecords", err, tt.WantErr)
			if got := waits.String(); got != tt.Waits {
				t.Errorf("waits: got %s, want %s", got, tt.Waits)
			}
			if got := env.Fake.Requests() - before; tt.Requests > 0 && got != tt.Requests {
				t.Errorf("requests: got %d, want %d", got, tt.Requests)
			}
			want := "203.0.113.9"
			if tt.WantErr != "" {
				want = "192.0.2.1"
			}
			env.checkHeld(t, "derp", "A", want)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		env := start(t)
		o, waits := Options(env.HTTP)
		env.Fake.Close()
		_, err := env.New(o).SetRecords(ctx, Zone+".", derp("203.0.113.9"))
		WantErr(t, "SetRecords", err, "calling "+env.Vendor)
		if got := len(waits.All()); got != 3 {
			t.Errorf("waits: got %v, want 3 backoffs", waits)
		}
	})
}
