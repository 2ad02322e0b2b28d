package derpload

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/net/stun"
)

// STUNLoad has workers UDP sockets each keep window binding requests
// outstanding at server for d, and returns the answers per second.
func STUNLoad(ctx context.Context, server netip.AddrPort, workers, window int, d time.Duration) (float64, error) {
	if window < 1 {
		window = 1
	}
	var answered atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stunWorker(ctx, server, window, end, &answered); err != nil {
				errOnce.Do(func() { firstErr = err })
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if answered.Load() == 0 {
		return 0, errors.New("no STUN answers")
	}
	return float64(answered.Load()) / time.Since(start).Seconds(), nil
}

func stunWorker(ctx context.Context, server netip.AddrPort, window int, end time.Time, answered *atomic.Int64) error {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return err
	}
	defer conn.Close()
	outstanding := map[stun.TxID]bool{}
	sendOne := func() error {
		tx := stun.NewTxID()
		outstanding[tx] = true
		_, err := conn.Write(stun.Request(tx))
		return err
	}
	buf := make([]byte, 1500)
	for time.Now().Before(end) && ctx.Err() == nil {
		for len(outstanding) < window {
			if err := sendOne(); err != nil {
				return err
			}
		}
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				clear(outstanding) // lost: send a fresh window
				continue
			}
			return err
		}
		tx, _, err := stun.ParseResponse(buf[:n])
		if err != nil || !outstanding[tx] {
			continue
		}
		delete(outstanding, tx)
		answered.Add(1)
	}
	return nil
}
