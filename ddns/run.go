package ddns

import (
	"context"
	"time"
)

// Run checks until ctx is done: a full check every Interval (±10%) while
// things work, with exponential backoff while they do not, and with a
// Prober a probe every ProbeInterval (±10%) in between, plus a look at the
// box's IPv6 addresses whenever the kernel says they changed. A probe
// that sees a change starts the full check at once.
//
// A probe can be wrong (a STUN server that answers oddly). When the full
// check it started finds the line as it was, no more probes run until the
// next scheduled full check, so a lying source costs at most one extra
// full check per Interval.
func (u *Updater) Run(ctx context.Context) {
	addrs := make(chan struct{}, 1)
	if u.c.Prober != nil && u.c.IPv6 {
		err := u.c.Prober.WatchAddrs(ctx, func() {
			select {
			case addrs <- struct{}{}:
			default:
			}
		})
		if err != nil {
			u.c.Logf("ddns: not watching this box's addresses (%v); probes list them every %v", err, u.c.ProbeInterval)
		}
	}
	failures := 0
	alarmed := false // a probe started this check
	for {
		before := u.detection()
		err := u.Check(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		quiet := alarmed && sameDetection(before, u.detection())
		if quiet {
			u.c.Logf("ddns: the line is as it was: no probes until the next scheduled check")
		}
		due := u.c.Clock.Now().Add(nextDelay(failures, u.c.Interval, u.c.RetryBase, u.c.RetryMax, u.c.Rand()))
		u.mu.Lock()
		u.status.NextCheck = due
		u.mu.Unlock()
		why, err := u.wait(ctx, due, addrs, quiet)
		if err != nil {
			return
		}
		alarmed = why != "" && why != askedNow
		if alarmed {
			u.c.Logf("ddns: %s; checking now", why)
		}
	}
}

// askedNow is wait's reason when CheckNow was called.
const askedNow = "asked to check now"

// wait sleeps until due, probing in between unless quiet. It returns
// early with the reason when a probe sees a change or CheckNow is called.
func (u *Updater) wait(ctx context.Context, due time.Time, addrs <-chan struct{}, quiet bool) (string, error) {
	probing := u.c.Prober != nil && !quiet
	for {
		d := due.Sub(u.c.Clock.Now())
		if d <= 0 {
			return "", nil
		}
		if probing {
			d = min(d, nextDelay(0, u.c.ProbeInterval, 0, 0, u.c.Rand()))
		}
		t, ch := u.c.Clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		case <-u.kick:
			t.Stop()
			return askedNow, nil
		case <-addrs:
			t.Stop()
			if !probing {
				continue
			}
			if why := u.probe6(); why != "" {
				return why, nil
			}
		case <-ch:
			if !probing || !u.c.Clock.Now().Before(due) {
				continue // the full check is due: it replaces the probe
			}
			if why := u.probe6(); why != "" {
				return why, nil
			}
			if why := u.probe4(ctx); why != "" {
				return why, nil
			}
		}
	}
}

func (u *Updater) sleep(ctx context.Context, d time.Duration) error {
	t, ch := u.c.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
