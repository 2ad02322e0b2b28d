package ddns

import (
	"testing"
	"time"
)

func TestNextDelay(t *testing.T) {
	const (
		iv   = 2 * time.Minute
		base = 30 * time.Second
		max  = 5 * time.Minute
	)
	tests := []struct {
		failures int
		r        float64
		want     time.Duration
	}{
		{0, 0.5, iv},
		{0, 0, iv - iv/10},
		{0, 0.999999, iv + iv/10 - 1},
		{1, 0.5, base},
		{2, 0.5, 2 * base},
		{3, 0.5, 4 * base},
		{4, 0.5, 8 * base},
		{5, 0.5, max},
		{50, 0.5, max},
		{50, 0, max - max/10},
	}
	for _, tt := range tests {
		got := nextDelay(tt.failures, iv, base, max, tt.r)
		if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("nextDelay(%d failures, r=%v): got %v, want %v", tt.failures, tt.r, got, tt.want)
		}
	}
}
