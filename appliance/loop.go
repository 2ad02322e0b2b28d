package main

import (
	"context"
	"sync"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"tailscale.com/types/logger"
)

// How a configuration change reaches the services: the web UI saves and
// returns; the store counts the change (a new generation) and wakes each
// service's applyLoop. Each loop runs on its own goroutine, reads the
// store's newest configuration (a burst of saves is applied once, as its
// last one) and applies it, then publishes what it did: the generation,
// when, how long it took and the error. Status readers and the web UI read
// that snapshot; nothing holds a lock across services, so a slow or
// failing apply (a relay retiring its clients, a DNS updater slow to
// stop, a port that cannot be bound) shows in status, never in a request.

// applied is what a service last did with the configuration.
type applied struct {
	Gen  uint64        // the store generation applied; 0 before the first apply
	At   time.Time     // when the apply ended
	Took time.Duration // how long it took
	Err  error         // why it failed, or nil
}

// applyLoop follows the store for one service.
type applyLoop struct {
	name  string // for the log, e.g. "relay"
	store *config.Store
	apply func(config.Config) error
	// retry re-applies the same generation this long after a failure
	// (a port taken by another program may be free later); 0 waits for
	// the next change.
	retry time.Duration
	logf  logger.Logf

	changes <-chan struct{} // nil: apply only when kicked
	unwatch func()
	kick    chan struct{} // apply again although the generation did not change
	stop    chan struct{}
	done    chan struct{}

	mu      sync.Mutex
	last    applied
	publish chan struct{} // closed and replaced when last changes
}

// startApplyLoop starts following the store with apply: at once for the
// current configuration, then after every change. retry is as in
// applyLoop.
func startApplyLoop(name string, store *config.Store, logf logger.Logf, retry time.Duration, apply func(config.Config) error) *applyLoop {
	changes, unwatch := store.Watch()
	return startLoop(name, store, logf, retry, changes, unwatch, apply)
}

// startKickedLoop is an apply loop that applies the store's current
// configuration only when asked (again), for a service whose input is
// what other services did with the configuration: the DERP map follows
// the relay's applies, not the saves.
func startKickedLoop(name string, store *config.Store, logf logger.Logf, retry time.Duration, apply func(config.Config) error) *applyLoop {
	return startLoop(name, store, logf, retry, nil, func() {}, apply)
}

func startLoop(name string, store *config.Store, logf logger.Logf, retry time.Duration, changes <-chan struct{}, unwatch func(), apply func(config.Config) error) *applyLoop {
	l := &applyLoop{
		name:    name,
		store:   store,
		apply:   apply,
		retry:   retry,
		logf:    logf,
		changes: changes,
		unwatch: unwatch,
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		publish: make(chan struct{}),
	}
	go l.run()
	return l
}

func (l *applyLoop) run() {
	defer close(l.done)
	defer l.unwatch()
	var retry <-chan time.Time
	again := l.changes != nil // the first configuration, unless kicked only
	for {
		c, gen := l.store.Current()
		if again || l.changes != nil && gen != l.state().Gen {
			again = false
			start := time.Now()
			err := l.apply(c)
			now := time.Now()
			prev := l.set(applied{Gen: gen, At: now, Took: now.Sub(start), Err: err})
			switch {
			case err != nil && (prev.Err == nil || prev.Err.Error() != err.Error()):
				l.logf("%s: applying configuration %d: %v", l.name, gen, err)
			case err == nil && prev.Err != nil:
				l.logf("%s: configuration %d applied", l.name, gen)
			}
			retry = nil
			if err != nil && l.retry > 0 {
				retry = time.After(l.retry)
			}
		}
		select {
		case <-l.stop:
			return
		case <-l.changes:
		case <-l.kick:
			again = true
		case <-retry:
			again = true
		}
	}
}

// set publishes a and returns what it replaces.
func (l *applyLoop) set(a applied) applied {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.last
	l.last = a
	close(l.publish)
	l.publish = make(chan struct{})
	return prev
}

// state is what the loop last did.
func (l *applyLoop) state() applied {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// again asks for an apply of the current configuration, although it did
// not change (an input from outside the store did, e.g. the certificate
// the map pins). Calls while one is pending coalesce.
func (l *applyLoop) again() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// wait returns the loop's state once it has applied generation gen or a
// later one, or its state when ctx ends, with ok false.
func (l *applyLoop) wait(ctx context.Context, gen uint64) (a applied, ok bool) {
	for {
		l.mu.Lock()
		a, published := l.last, l.publish
		l.mu.Unlock()
		if a.Gen >= gen {
			return a, true
		}
		select {
		case <-published:
		case <-ctx.Done():
			return a, false
		case <-l.done:
			return a, false
		}
	}
}

// close stops the loop and waits for an apply in progress to end.
func (l *applyLoop) close() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}
