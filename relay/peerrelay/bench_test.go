package peerrelay

import (
	"context"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testenv"
)

// BenchmarkTransfer moves 4 MiB from n2 to n1 over a TCP connection
// through their tailscaleds, once through the box's peer relay and once
// through DERP(home) with the peer relay off, in the same bed: the MB/s
// of the two sub-benchmarks compare the paths. Both ends run userspace
// networking as the box does, so the numbers are tailscaled's on this
// machine, not a wire's. It needs root and takes about a minute:
//
//	sudo go test -run - -bench Transfer -benchtime 10x ./peerrelay
func BenchmarkTransfer(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedCommand(b, "ip")
	testenv.NeedCommand(b, "nft")
	bed := newBed(b)
	bed.startControl(b, bed.startRelay(b))
	box := bed.startNode(b, bed.boxNS, "box")
	n1 := bed.startNode(b, bed.n1NS, "n1")
	n2 := bed.startNode(b, bed.n2NS, "n2")
	const size = 4 << 20
	payload := make([]byte, size)
	rand.Read(payload)
	port := payloadServer(b, n2, payload)

	for _, path := range []struct {
		name  string
		relay int    // the box's relay port; 0 is off
		via   string // what tailscale ping says
	}{
		{"peer-relay", relayPort, "peer-relay(" + boxAddr + ":" + strconv.Itoa(relayPort)},
		{"derp-home", 0, "DERP(home)"},
	} {
		b.Run(path.name, func(b *testing.B) {
			if _, err := Apply(context.Background(), box.lc, path.relay); err != nil {
				b.Fatal(err)
			}
			pingVia(b, n1, n2, path.via, 60*time.Second)
			b.SetBytes(size)
			for b.Loop() {
				if got := fetch(b, n1, n2, port); len(got) != size {
					b.Fatalf("read %d of %d bytes", len(got), size)
				}
			}
		})
	}
}
