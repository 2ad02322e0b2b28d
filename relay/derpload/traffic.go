package derpload

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

var (
	magicLoad   = []byte("derpload")
	magicWarmup = []byte("warmup!!")
)

const headerLen = 16 // magic + send time

// lostAfter is when a windowed sender stops waiting for a packet to
// arrive and counts it lost.
const lostAfter = 500 * time.Millisecond

type client struct {
	*derphttp.Client
	priv key.NodePrivate
}

// dial connects a new client to region, as tailscaled would with that map.
func dial(ctx context.Context, region *tailcfg.DERPRegion) (*client, error) {
	priv := key.NewNode()
	c := derphttp.NewRegionClient(priv, logger.Discard, netmon.NewStatic(), func() *tailcfg.DERPRegion { return region })
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return &client{c, priv}, nil
}

// dialMany connects n clients, a few at a time.
func dialMany(ctx context.Context, region *tailcfg.DERPRegion, n, parallel int) ([]*client, int, error) {
	clients := make([]*client, n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(ctx, region)
			if err != nil {
				failed.Add(1)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	var ok []*client
	for _, c := range clients {
		if c != nil {
			ok = append(ok, c)
		}
	}
	if len(ok) == 0 && n > 0 {
		return nil, n, errors.New("no client could connect")
	}
	return ok, int(failed.Load()), nil
}

func closeAll(cs []*client) {
	for _, c := range cs {
		c.Close()
	}
}

// receiver records what one client receives.
type receiver struct {
	start time.Time

	mu        sync.Mutex
	latencies []time.Duration
	bytes     int64
	last      time.Time
	warm      map[key.NodePublic]bool
	warmed    chan struct{} // closed once a warm-up packet arrived
	credits   chan struct{} // returned to the sender for each packet, in windowed runs
}

func (r *receiver) run(c *client) {
	for {
		m, err := c.Recv()
		if err != nil {
			if errors.Is(err, derphttp.ErrClientClosed) {
				return
			}
			continue // derphttp reconnects
		}
		p, ok := m.(derp.ReceivedPacket)
		if !ok || len(p.Data) < headerLen {
			continue
		}
		now := time.Since(r.start)
		switch {
		case bytes.Equal(p.Data[:8], magicLoad):
			sent := time.Duration(binary.BigEndian.Uint64(p.Data[8:16]))
			r.mu.Lock()
			r.latencies = append(r.latencies, now-sent)
			r.bytes += int64(len(p.Data))
			r.last = r.start.Add(now)
			r.mu.Unlock()
			select {
			case r.credits <- struct{}{}:
			default:
			}
		case bytes.Equal(p.Data[:8], magicWarmup):
			r.mu.Lock()
			if !r.warm[p.Source] {
				r.warm[p.Source] = true
				close(r.warmed)
			}
			r.mu.Unlock()
		}
	}
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.latencies)
}

// RunTraffic connects pairs of clients to t and has each send size-byte
// packets to its partner for d, then reports what arrived.
//
// Each client keeps window packets in flight: it sends the next one when
// one arrives at its partner (or, for a packet lost, after a timeout).
// That finds the most the server delivers without overload: an unpaced
// flood would mostly measure how fast derpserver drops packets from its
// full per-client queues, and a paced load below both servers' capacity
// cannot tell them apart.
func RunTraffic(ctx context.Context, t Target, pairs, window, size int, d time.Duration) (Traffic, error) {
	if size < headerLen {
		size = headerLen
	}
	cs, failed, err := dialMany(ctx, t.Region, 2*pairs, 16)
	if err != nil {
		return Traffic{}, err
	}
	defer closeAll(cs)
	if failed > 0 {
		return Traffic{}, fmt.Errorf("%d of %d clients could not connect", failed, 2*pairs)
	}
	start := time.Now()
	recv := make([]*receiver, len(cs))
	for i, c := range cs {
		recv[i] = &receiver{start: start, warm: map[key.NodePublic]bool{}, warmed: make(chan struct{}), credits: make(chan struct{}, max(window, 1))}
		go recv[i].run(c)
	}
	partner := func(i int) int { return i ^ 1 }

	// Warm up: a client is registered on the server a moment after
	// Connect returns, and packets to it are dropped before that.
	warmup := make([]byte, headerLen)
	copy(warmup, magicWarmup)
	deadline := time.Now().Add(20 * time.Second)
	for i := range cs {
		for tries := 0; ; tries++ {
			if err := cs[partner(i)].Send(cs[i].priv.Public(), warmup); err != nil {
				return Traffic{}, fmt.Errorf("warm-up send: %w", err)
			}
			select {
			case <-recv[i].warmed:
			case <-time.After(50 * time.Millisecond):
				if time.Now().After(deadline) {
					return Traffic{}, errors.New("warm-up packets did not arrive within 20s")
				}
				continue
			}
			break
		}
	}

	cpu0, err := ProcCPU(t.PID)
	if err != nil {
		return Traffic{}, err
	}
	self0, _ := ProcCPU(os.Getpid())
	start = time.Now()
	for _, r := range recv {
		r.mu.Lock()
		r.start = start
		r.mu.Unlock()
	}
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			credits := recv[partner(i)].credits
			for len(credits) > 0 { // left over from the warm-up
				<-credits
			}
			for range max(window, 1) {
				credits <- struct{}{}
			}
			n := send(c, cs[partner(i)].priv.Public(), start, size, credits, stop)
			sent.Add(n)
		}()
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	close(stop)
	wg.Wait()

	// Drain: wait until nothing more arrives for half a second.
	total := func() int {
		n := 0
		for _, r := range recv {
			n += r.count()
		}
		return n
	}
	prev := -1
	for i := 0; i < 20; i++ {
		n := total()
		if n == prev || int64(n) >= sent.Load() {
			break
		}
		prev = n
		time.Sleep(500 * time.Millisecond)
	}
	cpu1, err := ProcCPU(t.PID)
	if err != nil {
		return Traffic{}, err
	}
	self1, _ := ProcCPU(os.Getpid())

	var lat []time.Duration
	var bytes int64
	var last time.Time
	for _, r := range recv {
		r.mu.Lock()
		lat = append(lat, r.latencies...)
		bytes += r.bytes
		if r.last.After(last) {
			last = r.last
		}
		r.mu.Unlock()
	}
	res := Traffic{
		Sent:      sent.Load(),
		Received:  int64(len(lat)),
		ServerCPU: cpu1 - cpu0,
		ClientCPU: self1 - self0,
	}
	if res.Sent > 0 {
		res.Loss = 1 - float64(res.Received)/float64(res.Sent)
	}
	if el := last.Sub(start).Seconds(); el > 0 {
		res.PacketsPerSec = float64(res.Received) / el
		res.Mbps = float64(bytes) * 8 / el / 1e6
	}
	if bytes > 0 {
		res.CPUSecPerGB = res.ServerCPU.Seconds() / (float64(bytes) / 1e9)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50 = lat[len(lat)/2]
		res.P99 = lat[len(lat)*99/100]
	}
	return res, nil
}

// send sends to dst until stop, one packet per credit (a packet of its
// window arrived), and returns how many packets it sent.
func send(c *client, dst key.NodePublic, start time.Time, size int, credits chan struct{}, stop <-chan struct{}) int64 {
	pkt := make([]byte, size)
	copy(pkt, magicLoad)
	var n int64
	for {
		select {
		case <-stop:
			return n
		case <-credits:
		case <-time.After(lostAfter):
			// A packet of the window was lost; go on without it.
		}
		binary.BigEndian.PutUint64(pkt[8:16], uint64(time.Since(start)))
		if err := c.Send(dst, pkt); err != nil {
			return n
		}
		n++
	}
}
