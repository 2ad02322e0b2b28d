package portmap

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"tailscale.com/derp/derpserver"
)

// hairpin dials the relay through the router's public address, as a
// client on the Internet would, and checks that a DERP server answers:
// derpserver's /generate_204 echoes a challenge header. The certificate
// is not checked, only that it is a DERP server; the box is the only
// one behind this port.
//
// A failure is weak evidence: many home routers do not loop a LAN
// connection to their own WAN address back in (no "NAT loopback"), and
// the test bed's miniupnpd does not either. A success proves the forward
// exists, not that the line's upstream (a carrier's firewall) lets
// strangers in.
func hairpin(ctx context.Context, n Net, to netip.AddrPort, serverName string, timeout time.Duration) error {
	tr := &http.Transport{
		DialContext:       n.DialContext,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: serverName},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: timeout}
	var c [8]byte
	rand.Read(c[:])
	challenge := hex.EncodeToString(c[:])
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+to.String()+"/generate_204", nil)
	if err != nil {
		return err
	}
	req.Header.Set(derpserver.NoContentChallengeHeader, challenge)
	resp, err := hc.Do(req)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return fmt.Errorf("the connection did not come back to the box (%v)", oe.Err)
		}
		return err
	}
	resp.Body.Close()
	if got, want := resp.Header.Get(derpserver.NoContentResponseHeader), "response "+challenge; resp.StatusCode != http.StatusNoContent || got != want {
		return fmt.Errorf("something other than this relay answers there (HTTP %s)", resp.Status)
	}
	return nil
}
