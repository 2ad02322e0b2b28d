package derpload

import (
	"context"
	"time"
)

// idleSettle is how long after the last idle client connected the
// server's memory is read: long enough for every registration and its
// buffers to exist, far shorter than the 60 s DERP keepalive.
const idleSettle = 2 * time.Second

// IdleMemory connects n clients that then stay idle, and reports the
// server's resident memory before and with them.
func IdleMemory(ctx context.Context, t Target, n int) (Memory, error) {
	m := Memory{Clients: n}
	var err error
	if m.RSSBeforeKB, err = ProcRSS(t.PID); err != nil {
		return m, err
	}
	cs, failed, err := dialMany(ctx, t.Region, n, 32)
	if err != nil {
		return m, err
	}
	defer closeAll(cs)
	m.ConnectFailed = failed
	select {
	case <-time.After(idleSettle):
	case <-ctx.Done():
		return m, ctx.Err()
	}
	// Take the largest of a few readings a quarter second apart.
	for i := 0; i < 4; i++ {
		rss, err := ProcRSS(t.PID)
		if err != nil {
			return m, err
		}
		m.RSSKB = max(m.RSSKB, rss)
		time.Sleep(250 * time.Millisecond)
	}
	if c := len(cs); c > 0 {
		m.PerClientKB = float64(m.RSSKB-m.RSSBeforeKB) / float64(c)
	}
	return m, nil
}
