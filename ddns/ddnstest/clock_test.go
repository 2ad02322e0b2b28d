package ddnstest

import (
	"context"
	"testing"
	"time"
)

// TestClock: timers fire in deadline order only when stepped, the clock
// jumps to each deadline, real time passes on it too, and a stopped timer
// never fires.
func TestClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := NewClock()
	start := c.Now()
	_, long := c.NewTimer(time.Hour)
	stopped, _ := c.NewTimer(time.Minute)
	_, short := c.NewTimer(30 * time.Second)
	if !stopped.Stop() || stopped.Stop() {
		t.Errorf("Stop: want true once, then false")
	}
	if got := c.Timers(); got != 3 {
		t.Errorf("Timers: got %d, want 3", got)
	}
	select {
	case <-short:
		t.Fatal("a timer fired before Step")
	case <-time.After(20 * time.Millisecond):
	}
	if _, err := c.Step(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-short:
	default:
		t.Fatal("Step did not fire the earliest timer")
	}
	if got := c.Since(start); got < 30*time.Second || got > 31*time.Second {
		t.Errorf("after the first step: %v passed, want 30s and a little real time", got)
	}
	time.Sleep(50 * time.Millisecond) // real work between waits counts
	if got := c.Since(start); got < 30*time.Second+50*time.Millisecond {
		t.Errorf("after 50ms of real time: %v passed, want at least 30.05s", got)
	}
	jump, err := c.Step(ctx)
	if err != nil {
		t.Fatal(err)
	}
	<-long
	if got := c.Since(start); got < time.Hour || got > time.Hour+time.Second {
		t.Errorf("after the second step: %v passed, want 1h", got)
	}
	if jump > time.Hour-30*time.Second || jump < time.Hour-31*time.Second {
		t.Errorf("second jump: got %v, want just under 59m30s", jump)
	}
	short2, ch := c.NewTimer(time.Second)
	if short2.Reset(time.Minute) != true {
		t.Errorf("Reset of a pending timer: want true")
	}
	if d, err := c.Idle(ctx); err != nil || d < 59*time.Second {
		t.Errorf("Idle after Reset: got %v, %v; want about 1m to go", d, err)
	}
	c.Step(ctx)
	<-ch
	idle, cancelIdle := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelIdle()
	if _, err := c.Step(idle); err == nil {
		t.Errorf("Step with no timer pending: got no error, want the context's")
	}
}
