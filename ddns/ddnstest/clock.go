package ddnstest

import (
	"context"
	"slices"
	"sync"
	"time"

	"tailscale.com/tstime"
)

// Clock is a tstime.Clock that a test steps from one timer to the next,
// for measuring the ddns updater with its production schedule (probes
// every 30 s, checks every 2 min) in seconds instead of hours.
//
// Its time is the real time plus every jump so far. A timer does not fire
// by itself: Step fires the earliest pending one, jumping the clock to its
// deadline. Everything the code does between two waits (network round
// trips, writes, fsyncs) takes its real time on the same clock. A duration
// measured on it is therefore what the real clock would show: the
// schedule's waits plus the real work, without waiting for the waits.
//
// It suits code that waits on one timer at a time, as the updater does.
type Clock struct {
	mu      sync.Mutex
	offset  time.Duration
	pending []*clockTimer
	made    int64
	changed chan struct{} // closed and replaced when pending changes
}

// NewClock returns a clock at the real time with no timer pending.
func NewClock() *Clock { return &Clock{changed: make(chan struct{})} }

// Now returns the real time plus the jumps so far.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() time.Time { return time.Now().Add(c.offset) }

// Since returns c.Now().Sub(t).
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// NewTimer makes a timer that fires when Step reaches it.
func (c *Clock) NewTimer(d time.Duration) (tstime.TimerController, <-chan time.Time) {
	t := &clockTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.made++
	c.armLocked(t, d)
	return t, t.ch
}

// NewTicker is not supported: a ticker keeps a timer pending for ever.
func (c *Clock) NewTicker(time.Duration) (tstime.TickerController, <-chan time.Time) {
	panic("ddnstest.Clock: no tickers; it steps from one timer to the next")
}

// AfterFunc is not supported; the updater does not use it.
func (c *Clock) AfterFunc(time.Duration, func()) tstime.TimerController {
	panic("ddnstest.Clock: no AfterFunc")
}

// Timers returns how many timers were made so far, so that a test can
// wait until the code has reacted to something (it makes a new timer).
func (c *Clock) Timers() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made
}

// Idle waits until a timer is pending, that is until the code finished
// its work and waits again, and returns how long that timer has to go.
func (c *Clock) Idle(ctx context.Context) (time.Duration, error) {
	for {
		c.mu.Lock()
		if len(c.pending) > 0 {
			d := c.pending[0].deadline.Sub(c.nowLocked())
			c.mu.Unlock()
			return d, nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Step waits until a timer is pending, jumps to its deadline and fires
// it. It returns the jump.
func (c *Clock) Step(ctx context.Context) (time.Duration, error) {
	if _, err := c.Idle(ctx); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.pending[0]
	jump := max(t.deadline.Sub(c.nowLocked()), 0)
	c.offset += jump
	c.removeLocked(t)
	t.active = false
	t.ch <- t.deadline
	return jump, nil
}

func (c *Clock) armLocked(t *clockTimer, d time.Duration) {
	t.deadline, t.active = c.nowLocked().Add(d), true
	i, _ := slices.BinarySearchFunc(c.pending, t.deadline, func(p *clockTimer, d time.Time) int { return p.deadline.Compare(d) })
	c.pending = slices.Insert(c.pending, i, t)
	c.notifyLocked()
}

func (c *Clock) removeLocked(t *clockTimer) {
	if i := slices.Index(c.pending, t); i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
		c.notifyLocked()
	}
}

func (c *Clock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type clockTimer struct {
	c        *Clock
	ch       chan time.Time
	deadline time.Time
	active   bool
}

func (t *clockTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	t.c.removeLocked(t)
	return was
}

func (t *clockTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.c.removeLocked(t)
	t.c.armLocked(t, d)
	return was
}
