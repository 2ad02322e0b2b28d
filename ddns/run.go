package ddns

import (
	"context"
	"time"
)

// Run checks until ctx is done: every Interval (±10%) while things work,
// with exponential backoff while they do not.
func (u *Updater) Run(ctx context.Context) {
	failures := 0
	for {
		err := u.Check(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		d := nextDelay(failures, u.c.Interval, u.c.RetryBase, u.c.RetryMax, u.c.Rand())
		u.mu.Lock()
		u.status.NextCheck = u.c.Clock.Now().Add(d)
		u.mu.Unlock()
		t, ch := u.c.Clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-ch:
		case <-u.kick:
			t.Stop()
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
