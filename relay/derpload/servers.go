package derpload

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/relay"
	"github.com/homederp/homederp/relay/spec"
	"tailscale.com/tailcfg"
)

// Process is a DERP server started for a benchmark.
type Process struct {
	Target
	cmd *exec.Cmd
}

// Stop ends the process.
func (p *Process) Stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// Bench is a directory prepared so that both servers serve the same
// certificate the same way: one self-signed ECDSA P-256 certificate for
// 127.0.0.1 in derper's manual-mode naming, pinned by the clients.
type Bench struct {
	Dir  string
	Pin  string // the DERP map CertName of the certificate
	Logw io.Writer

	crtPEM, keyPEM []byte
}

// NewBench writes the shared certificate into dir/certs.
func NewBench(dir string, logw io.Writer) (*Bench, error) {
	crtPEM, keyPEM, err := relay.NewSelfSignedPEM("127.0.0.1", time.Now())
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(crtPEM)
	b := &Bench{Dir: dir, Pin: spec.Pin(block.Bytes), Logw: logw, crtPEM: crtPEM, keyPEM: keyPEM}
	if err := b.writePair(filepath.Join(dir, "certs")); err != nil {
		return nil, err
	}
	return b, nil
}

// writePair writes the bench certificate into dir with derper's naming
// (<hostname>.crt and .key), which the appliance's manual mode shares.
func (b *Bench) writePair(dir string) error {
	if err := os.MkdirAll(dir, 0700); err != nil {
		return err
	}
	crt, key := relay.ManualCertPaths(dir, "127.0.0.1")
	if err := os.WriteFile(crt, b.crtPEM, 0600); err != nil {
		return err
	}
	return os.WriteFile(key, b.keyPEM, 0600)
}

// StartAppliance starts the appliance binary, the program a box runs,
// in -dev mode (loopback) from a fresh state directory whose
// configuration serves the bench's certificate in manual mode.
func (b *Bench) StartAppliance(ctx context.Context, bin string) (*Process, error) {
	return b.start(ctx, "appliance", bin, func(derpPort, stunPort int) ([]string, error) {
		state, err := os.MkdirTemp(b.Dir, "appliance-")
		if err != nil {
			return nil, err
		}
		store, err := config.Open(state)
		if err != nil {
			return nil, err
		}
		c := config.Default()
		c.Hostname = "127.0.0.1"
		c.Relay.DERPPort, c.Relay.STUNPort = derpPort, stunPort
		c.Cert.Mode = config.CertManual
		if err := store.Save(c); err != nil {
			return nil, err
		}
		if err := b.writePair(filepath.Join(state, "certs")); err != nil {
			return nil, err
		}
		return []string{"-dev", "-state-dir", state, "-webui-addr", "127.0.0.1:0"}, nil
	})
}

// StartDerper starts upstream derper in manual certificate mode.
func (b *Bench) StartDerper(ctx context.Context, bin string) (*Process, error) {
	return b.start(ctx, "derper", bin, func(derpPort, stunPort int) ([]string, error) {
		return []string{
			"-a", "127.0.0.1:" + strconv.Itoa(derpPort),
			"-http-port", "-1",
			"-stun-port", strconv.Itoa(stunPort),
			"-hostname", "127.0.0.1",
			"-certmode", "manual",
			"-certdir", filepath.Join(b.Dir, "certs"),
			"-c", filepath.Join(b.Dir, "derper.key"),
		}, nil
	})
}

func (b *Bench) start(ctx context.Context, name, bin string, args func(derpPort, stunPort int) ([]string, error)) (*Process, error) {
	derpPort, stunPort, err := freePorts()
	if err != nil {
		return nil, err
	}
	argv, err := args(derpPort, stunPort)
	if err != nil {
		return nil, fmt.Errorf("preparing %s: %w", name, err)
	}
	cmd := exec.Command(bin, argv...)
	cmd.Stdout = b.Logw
	cmd.Stderr = b.Logw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, Target: Target{
		Name: name,
		PID:  cmd.Process.Pid,
		STUN: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(stunPort)),
		Region: &tailcfg.DERPRegion{RegionID: 900, RegionCode: "bench", Nodes: []*tailcfg.DERPNode{{
			Name: "900a", RegionID: 900, HostName: "127.0.0.1", IPv4: "127.0.0.1", IPv6: "none",
			DERPPort: derpPort, STUNPort: stunPort, CertName: b.Pin,
		}}},
	}}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(derpPort))
	for i := 0; ; i++ {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			break
		}
		if i >= 200 || ctx.Err() != nil {
			p.Stop()
			return nil, fmt.Errorf("%s did not start serving on %s: %v", name, addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := STUNLoad(ctx, p.STUN, 1, 1, 200*time.Millisecond); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s: STUN not answering: %w", name, err)
	}
	return p, nil
}

// freePorts finds a TCP port and a UDP port free on 127.0.0.1.
func freePorts() (int, int, error) {
	for i := 0; i < 20; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		tp := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		up := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		if tp != up {
			return tp, up, nil
		}
	}
	return 0, 0, errors.New("no free ports")
}
