package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"github.com/homederp/homederp/relay"
)

// relayService runs the relay for the current configuration and restarts
// it when a setting that needs new listeners or a new certificate changes.
type relayService struct {
	a *app

	mu   sync.Mutex
	srv  *relay.Server
	cert *tls.Certificate
	last relaySettings
}

// relaySettings are the config fields that need a relay restart.
type relaySettings struct {
	hostname           string
	derpPort, stunPort int
	certMode           config.CertMode
}

func newRelayService(a *app) *relayService { return &relayService{a: a} }

func (rs *relayService) apply(c config.Config) error {
	want := relaySettings{hostname(c), c.Relay.DERPPort, c.Relay.STUNPort, c.Cert.Mode}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.srv != nil && reflect.DeepEqual(want, rs.last) {
		return nil
	}
	cert, err := relay.LoadOrCreateSelfSigned(filepath.Join(rs.a.opts.stateDir, "certs"), want.hostname, time.Now())
	if err != nil {
		return fmt.Errorf("self-signed certificate: %w", err)
	}
	var stunAddrs []string
	hosts := rs.a.listenHosts()
	for _, h := range hosts {
		stunAddrs = append(stunAddrs, net.JoinHostPort(h, strconv.Itoa(want.stunPort)))
	}
	if rs.srv != nil {
		rs.srv.Close()
		rs.srv = nil
	}
	srv, err := relay.New(relay.Config{
		Hostname:  want.hostname,
		DERPAddr:  net.JoinHostPort(hosts[0], strconv.Itoa(want.derpPort)),
		STUNAddrs: stunAddrs,
		KeyPath:   filepath.Join(rs.a.opts.stateDir, "derper.key"),
		Certs:     relay.StaticCert{Cert: cert},
		DERPMap:   rs.a.derpMapJSON,
	}, rs.a.logf)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	go func() {
		if err, ok := <-srv.Err(); ok {
			rs.a.errc <- err
		}
	}()
	rs.srv, rs.cert, rs.last = srv, cert, want
	return nil
}

// mapOptions says how the emitted map must treat the current certificate.
func (rs *relayService) mapOptions() derpmap.Options {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var o derpmap.Options
	if rs.last.certMode == config.CertSelfSigned && rs.cert != nil {
		o.PinnedCert = rs.cert.Certificate[0]
	}
	return o
}

func (rs *relayService) close() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.srv != nil {
		rs.srv.Close()
		rs.srv = nil
	}
}
