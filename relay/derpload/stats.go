package derpload

import (
	"math"
	"slices"
)

// Spread is what a set of per-round values says about their median.
type Spread struct {
	N        int
	Median   float64
	Lo, Hi   float64 // a confidence interval of at least 95 % for the median; NaN when N is too small
	Min, Max float64
}

// Width is the confidence interval's width relative to the median, e.g.
// 0.04 for an interval 4 % wide; +Inf without an interval.
func (s Spread) Width() float64 {
	if math.IsNaN(s.Lo) || s.Median == 0 {
		return math.Inf(1)
	}
	return (s.Hi - s.Lo) / math.Abs(s.Median)
}

// SpreadOf summarizes v. The interval for the median is the
// distribution-free one from order statistics: with the values sorted,
// [v_k, v_(n+1-k)] for the largest k whose two tails of the binomial
// distribution Bin(n, ½) hold at most 5 %. It needs no assumption about
// the noise (a shared machine's is anything but normal) and exists from
// 6 values on.
func SpreadOf(v []float64) Spread {
	s := Spread{N: len(v), Median: math.NaN(), Lo: math.NaN(), Hi: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	if len(v) == 0 {
		return s
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	s.Min, s.Max = v[0], v[n-1]
	if n%2 == 1 {
		s.Median = v[n/2]
	} else {
		s.Median = (v[n/2-1] + v[n/2]) / 2
	}
	// tail(j) = P(B <= j) for B ~ Bin(n, 1/2).
	tail := func(j int) float64 {
		p := 0.0
		for i := 0; i <= j; i++ {
			p += math.Exp(lchoose(n, i) - float64(n)*math.Ln2)
		}
		return p
	}
	k := 0
	for j := 1; j <= n/2 && 2*tail(j-1) <= 0.05; j++ {
		k = j
	}
	if k > 0 {
		s.Lo, s.Hi = v[k-1], v[n-k]
	}
	return s
}

// lchoose is log(n choose k).
func lchoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}
