package ddns

import "time"

// nextDelay returns the wait before the next check: the interval after a
// success, exponential backoff from base after consecutive failures
// (capped at maxBackoff), each with ±10%
// jitter so that boxes behind one outage do not retry in lockstep. r is a
// random number in [0, 1).
func nextDelay(failures int, interval, base, maxBackoff time.Duration, r float64) time.Duration {
	d := interval
	if failures > 0 {
		d = base
		for i := 1; i < failures && d < maxBackoff; i++ {
			d *= 2
		}
		d = min(d, maxBackoff)
	}
	jitter := time.Duration((r*0.2 - 0.1) * float64(d))
	return d + jitter
}
