// Package derpload measures a DERP server the way its users load it:
// pairs of real tailscale.com/derp/derphttp clients exchanging packets
// through it as fast as it delivers them, many idle clients holding
// connections,
// and STUN binding requests. It reads the server process's CPU time and
// memory from /proc, so the server must run as its own process on this
// machine. cmd/derpload runs it against the homederp appliance and
// upstream derper in one go.
package derpload

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"tailscale.com/tailcfg"
)

// Target is a running DERP server to measure.
type Target struct {
	Name   string              // e.g. "homederp"
	Region *tailcfg.DERPRegion // how clients dial it (host, port, CertName pin)
	STUN   netip.AddrPort      // its STUN listener; zero skips the STUN test
	PID    int                 // the server process, for CPU time and RSS
}

// Options shape the load.
type Options struct {
	Pairs    int           // client pairs; each client of a pair sends to the other, e.g. 10
	Window   int           // packets each client keeps in flight in the windowed (maximum throughput) run, e.g. 16
	Size     int           // payload bytes per packet, e.g. 1200 (a WireGuard packet on a 1280 MTU)
	Duration time.Duration // how long the clients send, e.g. 10s

	IdleClients int // clients that connect and stay idle, for the memory test, e.g. 1000

	STUNWorkers  int           // UDP sockets sending STUN requests, e.g. 4
	STUNWindow   int           // requests each keeps outstanding, e.g. 16
	STUNDuration time.Duration // e.g. 5s

	Logf func(format string, args ...any)
}

// Traffic is the result of one traffic run.
type Traffic struct {
	Sent, Received int64   // packets
	Loss           float64 // fraction of sent packets never received
	PacketsPerSec  float64 // received packets per second
	Mbps           float64 // received payload megabits per second
	P50, P99       time.Duration
	ServerCPU      time.Duration // user+system CPU time of the server during the run
	CPUSecPerGB    float64       // ServerCPU per 10^9 payload bytes delivered
	ClientCPU      time.Duration // CPU time of this (load generating) process
}

// Memory is the result of the idle-client test.
type Memory struct {
	Clients       int
	RSSBeforeKB   int64 // server RSS before the clients connect
	RSSKB         int64 // server RSS with the clients connected
	PerClientKB   float64
	ConnectFailed int
}

// Result is everything measured about one target.
type Result struct {
	Name     string
	Memory   Memory
	Max      Traffic // windowed: the most the server delivers
	STUNRate float64 // STUN binding requests answered per second
}

// Measure runs the memory test on the fresh server first (so traffic
// does not inflate its heap), then traffic, then STUN.
func Measure(ctx context.Context, t Target, o Options) (Result, error) {
	r := Result{Name: t.Name}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var err error
	if o.IdleClients > 0 {
		logf("%s: %d idle clients", t.Name, o.IdleClients)
		if r.Memory, err = IdleMemory(ctx, t, o.IdleClients); err != nil {
			return r, fmt.Errorf("%s: idle clients: %w", t.Name, err)
		}
	}
	if o.Pairs > 0 {
		logf("%s: %d pairs, %d packets in flight each way", t.Name, o.Pairs, o.Window)
		if r.Max, err = RunTraffic(ctx, t, o.Pairs, o.Window, o.Size, o.Duration); err != nil {
			return r, fmt.Errorf("%s: windowed traffic: %w", t.Name, err)
		}
	}
	if t.STUN.IsValid() && o.STUNWorkers > 0 {
		logf("%s: STUN", t.Name)
		if r.STUNRate, err = STUNLoad(ctx, t.STUN, o.STUNWorkers, o.STUNWindow, o.STUNDuration); err != nil {
			return r, fmt.Errorf("%s: STUN: %w", t.Name, err)
		}
	}
	return r, nil
}
