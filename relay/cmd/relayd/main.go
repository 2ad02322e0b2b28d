// The relayd command runs homederp's relay on its own, configured with
// flags named as upstream derper names them, for trying the relay (or
// comparing it with derper flag for flag) without the appliance's config
// store. On the box the appliance runs the same relay package; the
// benchmark (relay/cmd/derpload) measures the appliance itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/homederp/homederp/relay"
)

var (
	addr          = flag.String("a", ":12345", "The TCP address to serve DERP over TLS on, e.g. \":12345\" or \"127.0.0.1:12345\".")
	stunPort      = flag.Int("stun-port", 3478, "The UDP port to serve STUN on, bound to the host of -a; -1 turns STUN off.")
	hostname      = flag.String("hostname", "", "The host name (or IP address) clients dial, e.g. derp.example.com.")
	certMode      = flag.String("certmode", "self-signed", "Where the certificate comes from: \"self-signed\" (made and kept in -certdir) or \"manual\" (<hostname>.crt and .key in -certdir, reloaded when they change).")
	certDir       = flag.String("certdir", "certs", "The directory holding the certificates.")
	keyFile       = flag.String("c", "derper.key", "The file holding the DERP node key, created on first use.")
	verifyClients = flag.Bool("verify-clients", false, "Admit only clients the local tailscaled knows.")
	socket        = flag.String("socket", "", "The tailscaled socket for -verify-clients; empty means the platform default.")
	verifyURL     = flag.String("verify-client-url", "", "An admission URL (e.g. headscale's /verify) to ask about each client.")
	verifyOpen    = flag.Bool("verify-client-url-fail-open", false, "Admit clients when -verify-client-url cannot be reached.")
	meshPSKFile   = flag.String("mesh-psk-file", "", "The file holding the region's mesh key (64 hex characters).")
	meshWith      = flag.String("mesh-with", "", "Comma-separated mesh peers, host[:port][/dialhost], verified through the system's CAs.")
	clientRate    = flag.Int64("per-client-rate", 0, "Per-client limit in bytes per second; 0 means unlimited.")
	clientBurst   = flag.Int64("per-client-burst", 0, "Per-client burst in bytes.")
	acceptLimit   = flag.Float64("accept-connection-limit", 0, "New connections accepted per second; 0 means unlimited.")
	acceptBurst   = flag.Int("accept-connection-burst", 0, "Burst of new connections accepted.")
	metricsAddr   = flag.String("metrics-addr", "", "If set, serve Prometheus metrics at http://<addr>/metrics, e.g. 127.0.0.1:9100 (keep it off the Internet).")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	if *hostname == "" {
		return errors.New("-hostname is required")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-a %q: %w", *addr, err)
	}
	self, err := relay.SelfSigned(*certDir, *hostname, time.Now(), log.Printf)
	if err != nil {
		return err
	}
	var certs relay.CertSource = self
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch *certMode {
	case "self-signed":
	case "manual":
		m := relay.NewManualCerts(*certDir, *hostname, nil, log.Printf, nil)
		if err := m.Reload(); err != nil {
			return err
		}
		go m.Run(ctx, 5*time.Second)
		certs = m
	default:
		return fmt.Errorf("-certmode %q: want self-signed or manual", *certMode)
	}

	var p relay.Policy
	switch {
	case *verifyClients:
		p.Verify = relay.Verify{Mode: relay.VerifyTailscaled, TailscaledSocket: *socket}
	case *verifyURL != "":
		p.Verify = relay.Verify{Mode: relay.VerifyURL, URL: *verifyURL, URLFailOpen: *verifyOpen}
	}
	p.ClientRate = relay.RateLimit{BytesPerSec: *clientRate, BurstBytes: *clientBurst}
	p.AcceptRate = relay.AcceptLimit{PerSec: *acceptLimit, Burst: *acceptBurst}
	if *meshPSKFile != "" {
		b, err := os.ReadFile(*meshPSKFile)
		if err != nil {
			return err
		}
		p.MeshKey = strings.TrimSpace(string(b))
	}
	for _, m := range strings.Split(*meshWith, ",") {
		if m == "" {
			continue
		}
		peer, err := relay.ParseMeshPeer(m)
		if err != nil {
			return err
		}
		p.MeshWith = append(p.MeshWith, peer)
	}

	var stunAddrs []string
	if *stunPort >= 0 {
		stunAddrs = []string{net.JoinHostPort(host, strconv.Itoa(*stunPort))}
	}
	srv, err := relay.New(relay.Config{
		Hostname:  *hostname,
		DERPAddrs: []string{*addr},
		STUNAddrs: stunAddrs,
		KeyPath:   *keyFile,
		Certs:     certs,
		Policy:    p,
	}, log.Printf)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	if *metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", srv.MetricsHandler())
		ms := &http.Server{Addr: *metricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { log.Printf("metrics: %v", ms.ListenAndServe()) }()
		defer ms.Close()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-srv.Err():
		return err
	}
}
