package webui

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/devbox"
	"github.com/homederp/homederp/internal/headscaletest"
	"github.com/homederp/homederp/internal/pebbletest"
	"github.com/homederp/homederp/internal/testenv"
	"github.com/homederp/homederp/relay"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// TestHeadscaleBehindNginx is the relay behind Debian's nginx with the
// configuration the README recommends: nginx holds a trusted certificate
// (Pebble's here), terminates TLS and forwards to the box, checking the
// box's own certificate. The web UI's "behind a reverse proxy" choice
// makes the map dial nginx; real nodes of a real headscale relay via
// DERP(home) through it, and the relay sees a client's own address
// through X-Forwarded-For.
func TestHeadscaleBehindNginx(t *testing.T) {
	testenv.NeedLong(t)
	nginxBin := testenv.NeedCommand(t, "nginx")
	ca := pebbletest.Start(t, pebbletest.Options{AlwaysValid: true})
	box := startHSBox(t, devbox.Build(t), nil)
	nginxPort := devbox.FreePort(t)

	resp, body := box.ui.submit("/setup", "/setup/ports", url.Values{
		"relay.derp_port": {strconv.Itoa(box.derpPort)}, "relay.stun_port": {strconv.Itoa(box.stunPort)},
		"reverse_proxy.enabled": {"on"}, "reverse_proxy.public_port": {strconv.Itoa(nginxPort)}, "reverse_proxy.trusted": {"127.0.0.1"},
	})
	mustStatus(t, "POST /setup/ports behind a reverse proxy", resp, body, http.StatusSeeOther)
	v := box.mapPage(t)
	if v.Proxy != "localhost:"+strconv.Itoa(nginxPort) || v.Pinned {
		t.Fatalf("map page behind nginx: proxy %q, pinned %v", v.Proxy, v.Pinned)
	}

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	chain, chainKey := ca.Issue(t, "localhost")
	// The box keeps its certificate and key in one file; nginx gets the
	// certificate only (the README fetches it over TLS).
	pair, err := os.ReadFile(filepath.Join(box.dir, "certs", "self-signed-localhost.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pair)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("the box's certificate file does not start with a certificate")
	}
	boxCert := pem.EncodeToMemory(block)
	conf := readmeNginx(t, strings.NewReplacer(
		"listen 443 ssl;", fmt.Sprintf("listen 127.0.0.1:%d ssl;", nginxPort),
		"derp.example.com;", "localhost;",
		"/etc/letsencrypt/live/derp.example.com/fullchain.pem", write("nginx.crt", chain),
		"/etc/letsencrypt/live/derp.example.com/privkey.pem", write("nginx.key", chainKey),
		"192.168.1.23:12345", fmt.Sprintf("127.0.0.1:%d", box.derpPort),
		"/etc/nginx/homederp-box.crt", write("homederp-box.crt", boxCert),
	))
	startNginx(t, nginxBin, dir, conf, fmt.Sprintf("127.0.0.1:%d", nginxPort))

	roots := write("pebble-root.pem", ca.RootPEM())
	env := append([]string{"SSL_CERT_FILE=" + roots}, nodeEnv...)
	hs := headscaletest.Start(t, headscaletest.Options{DERPPaths: []string{box.pathsFile(t, "")}})
	key2 := hs.PreAuthKey(t, hs.CreateUser(t, "family"))
	laptop, phone := headscaletest.StartNode(t, "laptop", env), headscaletest.StartNode(t, "phone", env)
	laptop.Up(t, hs.URL, key2)
	phone.Up(t, hs.URL, key2)

	t.Run("the nodes relay via DERP(home) through nginx", func(t *testing.T) {
		r := nodeRegion(t, laptop, 900, func(r *tailcfg.DERPRegion) string {
			if len(r.Nodes) != 1 || r.Nodes[0].DERPPort != nginxPort {
				return "not nginx's port"
			}
			return ""
		})
		if n := r.Nodes[0]; n.CertName != "" || n.HostName != "localhost" || n.STUNPort != box.stunPort {
			t.Errorf("region 900 behind nginx: %+v; want localhost:%d, no pin, STUN %d on the box", n, nginxPort, box.stunPort)
		}
		out, err := laptop.PingVia(t, phone, "DERP(home)", 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("tailscale ping laptop → phone through nginx:\n%s", out)
		st := box.relayStatus(t)
		if st.ClientsConnected < 2 {
			t.Errorf("the relay has %d clients; want the nodes, through nginx", st.ClientsConnected)
		}
		t.Logf("tailscale netcheck on laptop:%s", netcheck(t, laptop, "home"))
	})

	t.Run("the relay sees the client's address through X-Forwarded-For", func(t *testing.T) {
		box.setVerify(t, url.Values{"relay.verify": {"url"}, "relay.verify_client_url": {hs.URL + "/verify"}})
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca.RootPEM())
		priv := key.NewNode()
		var st relay.Status
		for i := 0; i < 20; i++ { // until the new admission policy is in place
			c, err := derphttp.NewClient(priv, fmt.Sprintf("https://localhost:%d/derp", nginxPort), t.Logf, netmon.NewStatic())
			if err != nil {
				t.Fatal(err)
			}
			c.TLSConfig = &tls.Config{RootCAs: pool}
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
			c.SetURLDialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", nginxPort))
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c.Connect(ctx)
			cancel()
			time.Sleep(300 * time.Millisecond)
			c.Close()
			if st = box.relayStatus(t); st.LastRefusal.Client == priv.Public().String() {
				break
			}
		}
		ref := st.LastRefusal
		if ref.Client != priv.Public().String() || ref.Remote != "127.0.0.2" || !strings.Contains(ref.Reason, "not allowed") {
			t.Fatalf("last refusal %+v; want %s from 127.0.0.2 (the client behind nginx, from X-Forwarded-For)", ref, priv.Public())
		}
		t.Logf("refused through nginx: %s from %s: %s", ref.Client, ref.Remote, ref.Reason)
	})
}

// readmeNginx returns the nginx block of the README's "Behind nginx"
// section with the example values replaced, so the test runs what the
// README recommends.
func readmeNginx(t *testing.T, r *strings.Replacer) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Behind nginx\n.*?```nginx\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no nginx block in its \"Behind nginx\" section")
	}
	conf := r.Replace(string(m[1]))
	for _, example := range []string{"192.168.1.23", "derp.example.com", "/etc/"} {
		if strings.Contains(conf, example) {
			t.Fatalf("the README's nginx block changed: %q is left in\n%s", example, conf)
		}
	}
	return conf
}

// startNginx runs nginx in the foreground with server (an http-context
// block, as in /etc/nginx/conf.d) inside a minimal nginx.conf of its own,
// waits until it listens on addr, and stops it when the test ends.
func startNginx(t *testing.T, bin, dir, server, addr string) {
	t.Helper()
	conf := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, server)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, conf)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path, "-g", "daemon off;")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT) // nginx's graceful stop
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Error("nginx did not stop within 10s of SIGQUIT")
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
			t.Logf("nginx error log:\n%s\nnginx access log:\n%s", log.String(), b)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatal("nginx exited at start")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx does not listen after 10s")
		}
	}
}
