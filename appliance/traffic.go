package main

import (
	"sync"
	"time"

	"github.com/homederp/homederp/relay"
)

// Traffic samples for the status page's chart: one a minute, a day kept
// in memory.
const (
	trafficEvery = time.Minute
	trafficKeep  = 24 * time.Hour
)

// trafficService samples the relay's clients and throughput.
type trafficService struct {
	h    *relay.TrafficHistory
	stop chan struct{}
	wg   sync.WaitGroup
}

func startTraffic(status func() relay.Status) *trafficService {
	ts := &trafficService{h: relay.NewTrafficHistory(trafficKeep), stop: make(chan struct{})}
	ts.h.Add(time.Now(), status())
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		t := time.NewTicker(trafficEvery)
		defer t.Stop()
		for {
			select {
			case <-ts.stop:
				return
			case now := <-t.C:
				ts.h.Add(now, status())
			}
		}
	}()
	return ts
}

func (ts *trafficService) close() {
	close(ts.stop)
	ts.wg.Wait()
}
