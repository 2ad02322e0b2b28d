package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory on the box: a burst of connections (a reconnect storm after the
// line came back, or someone churning the DERP port) leaves the Go heap
// large long after it ended. derpserver keeps each disconnected client's
// buffers reachable for up to 10 s (its per-client TCP stats timer is not
// stopped on disconnect), so a storm of 500 connections a second pins
// ~100 MB at its peak; afterwards the heap goal stays there until the
// next collection, which on an idle box is the runtime's forced one two
// minutes later. On a 512 MB board that is worth giving back sooner.
const (
	trimEvery = 10 * time.Second
	// trimFloor is the heap size (live and free, not yet released) below
	// which nothing is trimmed: the idle appliance holds about 5 MB.
	trimFloor = 8 << 20
	// trimBackoffMax bounds the wait between trims that free little
	// (many clients connected: the heap is big because it is in use).
	trimBackoffMax = 5 * time.Minute
)

// trimMemory returns freed heap memory to the OS once the heap is idle
// and large: when more than trimFloor is held and the runtime has not
// collected by itself since the last check (every interval), it collects
// and releases what is free (debug.FreeOSMemory, twice when the first
// freed much). A trim that frees little doubles the wait before the next
// one, up to trimBackoffMax, so a box whose heap is big because clients
// use it pays one collection every few minutes. The checks read runtime/metrics,
// which does not stop the world. It returns when ctx ends.
func trimMemory(ctx context.Context, interval time.Duration) {
	held := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"}, // live and not yet swept
		{Name: "/memory/classes/heap/unused:bytes"},  // in spans, unused
		{Name: "/memory/classes/heap/free:bytes"},    // free, not returned
		// Stacks of goroutines that ended stay here until a collection
		// frees them: 500 half-open handshakes leave 6 MB.
		{Name: "/memory/classes/heap/stacks:bytes"},
	}
	cycles := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	read := func(ss []metrics.Sample) uint64 {
		metrics.Read(ss)
		var n uint64
		for _, s := range ss {
			if s.Value.Kind() == metrics.KindUint64 {
				n += s.Value.Uint64()
			}
		}
		return n
	}
	lastCycles := read(cycles)
	wait := interval
	var next time.Time
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c := read(cycles); c != lastCycles {
			lastCycles = c // busy: the runtime manages its heap itself
			continue
		}
		h := read(held)
		if h <= trimFloor || time.Now().Before(next) {
			continue
		}
		debug.FreeOSMemory()
		if after := read(held); after < h*3/4 {
			// What the first collection freed (goroutine stacks,
			// spans of the objects it swept) is released by the next.
			debug.FreeOSMemory()
			wait = interval
		} else {
			wait = min(2*wait, trimBackoffMax)
		}
		lastCycles = read(cycles)
		next = time.Now().Add(wait)
	}
}
