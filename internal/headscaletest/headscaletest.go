// Package headscaletest runs a real headscale (juanfont/headscale, built
// from ./hsbuild) on loopback for a test, and real tailscaled nodes from
// the product's own tailscale.com pin that log in to it with
// --login-server and a pre-auth key. It is the control server homederp's
// users run, where tailscale.com's testcontrol is a stand-in.
//
//	hs := headscaletest.Start(t, headscaletest.Options{DERPPaths: []string{yamlFile}})
//	user := hs.CreateUser(t, "home")
//	n := headscaletest.StartNode(t, "laptop", nil)
//	n.Up(t, hs.URL, hs.PreAuthKey(t, user))
//
// headscale gets a generated configuration: sqlite in a temp directory, a
// fresh noise key, no OIDC, MagicDNS off, no policy (every node sees every
// other), every listener on a free loopback port. It is stopped with
// SIGTERM when the test ends, and must exit cleanly.
package headscaletest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/devbox"
)

// Version is the headscale the test bed runs (pinned in hsbuild/go.mod).
const Version = "v0.27.1"

// Bounds of the waits on headscale.
const (
	readyTimeout = 60 * time.Second // start to /health answering
	stopTimeout  = 15 * time.Second // SIGTERM to exit
	cliTimeout   = 30 * time.Second // one CLI command
)

// Options configure headscale's derp section and environment.
type Options struct {
	// DERPPaths are files for derp.paths: YAML maps, e.g. the one the
	// box's web UI offers.
	DERPPaths []string
	// DERPURLs are URLs for derp.urls, e.g. the box's /derpmap.json.
	// headscale fetches them when it starts and refuses to start if
	// one fails.
	DERPURLs []string
	// EmbeddedDERP turns on headscale's own DERP server, region 999,
	// with its STUN on a free loopback port.
	EmbeddedDERP bool
	// UpdateFrequency makes headscale reload the paths and URLs this
	// often (derp.update_frequency); 0 loads them only at start.
	UpdateFrequency time.Duration
	// Env is added to headscale's environment, e.g.
	// "SSL_CERT_FILE=/tmp/…/pebble-root.pem" for derp.urls.
	Env []string
	// Logf receives headscale's log; nil keeps it, and prints it if
	// the test fails.
	Logf func(format string, args ...any)
}

// Server is a running headscale.
type Server struct {
	URL        string // server_url, e.g. "http://127.0.0.1:41234"
	Dir        string // its state and configuration
	ConfigPath string

	bin    string
	logf   func(string, ...any)
	log    *syncBuffer
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// Start runs headscale and waits until it answers /health.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := TryStart(t, o)
	if err != nil {
		t.Fatalf("headscaletest: %v", err)
	}
	return s
}

// TryStart is Start returning why headscale did not come up (with its
// log) instead of failing the test, for a configuration it must refuse.
func TryStart(t testing.TB, o Options) (*Server, error) {
	t.Helper()
	bin := Binary(t)
	var lastErr error
	for range 3 { // a free port may be taken before headscale binds it
		s, err := start(t, bin, o)
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			return s, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(t testing.TB, bin string, o Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "hd-headscale-")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{Dir: dir, ConfigPath: filepath.Join(dir, "config.yaml"), bin: bin, logf: o.Logf, log: &syncBuffer{}}
	port := devbox.FreePort(t)
	s.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	if err := os.WriteFile(s.ConfigPath, []byte(s.config(t, o, port)), 0600); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "serve", "-c", s.ConfigPath)
	s.cmd.Env = append(os.Environ(), o.Env...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.WaitDelay = 5 * time.Second
	if o.Logf != nil {
		s.cmd.Stderr = &lineLogger{logf: o.Logf, also: s.log}
		s.cmd.Stdout = s.cmd.Stderr
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.exited = make(chan struct{})
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			s.cmd.Process.Kill()
			<-s.exited
			t.Errorf("headscale did not exit within %v of SIGTERM", stopTimeout)
		}
		if t.Failed() && o.Logf == nil {
			t.Logf("headscale log:\n%s", s.log.String())
		}
	})
	if err := s.awaitReady(); err != nil {
		return nil, err
	}
	t.Logf("headscale %s serving %s (state %s)", Version, s.URL, dir)
	return s, nil
}

// config is headscale's config.yaml for o, listening on port.
func (s *Server) config(t testing.TB, o Options, port int) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("server_url: %s", s.URL)
	p("listen_addr: 127.0.0.1:%d", port)
	p("metrics_listen_addr: 127.0.0.1:%d", devbox.FreePort(t))
	p("grpc_listen_addr: 127.0.0.1:%d", devbox.FreePort(t))
	p("grpc_allow_insecure: false")
	p("noise:\n  private_key_path: %q", filepath.Join(s.Dir, "noise_private.key"))
	p("prefixes:\n  v4: 100.64.0.0/10\n  v6: fd7a:115c:a1e0::/48\n  allocation: sequential")
	p("derp:")
	p("  server:")
	p("    enabled: %v", o.EmbeddedDERP)
	if o.EmbeddedDERP {
		p("    region_id: 999\n    region_code: headscale\n    region_name: Headscale Embedded DERP")
		p("    verify_clients: true")
		p("    stun_listen_addr: 127.0.0.1:%d", devbox.FreePort(t))
		p("    private_key_path: %q", filepath.Join(s.Dir, "derp_server_private.key"))
		p("    automatically_add_embedded_derp_region: true")
		p("    ipv4: 127.0.0.1")
	}
	list := func(key string, vs []string) {
		if len(vs) == 0 {
			p("  %s: []", key)
			return
		}
		p("  %s:", key)
		for _, v := range vs {
			p("    - %q", v)
		}
	}
	list("urls", o.DERPURLs)
	list("paths", o.DERPPaths)
	p("  auto_update_enabled: %v", o.UpdateFrequency > 0)
	if o.UpdateFrequency > 0 {
		p("  update_frequency: %s", o.UpdateFrequency)
	}
	p("disable_check_updates: true")
	p("ephemeral_node_inactivity_timeout: 30m")
	p("database:\n  type: sqlite\n  sqlite:\n    path: %q\n    write_ahead_log: true", filepath.Join(s.Dir, "db.sqlite"))
	p("log:\n  level: info\n  format: text")
	p("policy:\n  mode: file\n  path: \"\"")
	p("dns:\n  magic_dns: false\n  base_domain: headscale.homederp.test\n  override_local_dns: false\n  nameservers:\n    global: []")
	p("unix_socket: %q\nunix_socket_permission: \"0770\"", filepath.Join(s.Dir, "headscale.sock"))
	p("logtail:\n  enabled: false")
	p("randomize_client_port: false")
	return b.String()
}

// awaitReady waits until /health answers, or headscale exits.
func (s *Server) awaitReady() error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("headscale exited (%v) before serving:\n%s", s.err, s.log.String())
		default:
		}
		resp, err := c.Get(s.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("headscale did not answer /health within %v:\n%s", readyTimeout, s.log.String())
}

// Stop stops headscale with SIGTERM, as systemd would, and checks that it
// exits cleanly. Requests to it fail from then on.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		var ee *exec.ExitError
		if s.err != nil && !(errors.As(s.err, &ee) && ee.ExitCode() == 0) {
			t.Errorf("headscale after SIGTERM: %v, want a clean exit", s.err)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("headscale did not stop within %v of SIGTERM", stopTimeout)
	}
}

// Log returns what headscale has logged so far.
func (s *Server) Log() string { return s.log.String() }

// CLI runs `headscale -c config.yaml args... -o json` against the running
// server (over its unix socket) and returns its output.
func (s *Server) CLI(t testing.TB, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, append(append([]string{"-c", s.ConfigPath}, args...), "-o", "json")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("headscale %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// CreateUser creates a user and returns its ID.
func (s *Server) CreateUser(t testing.TB, name string) uint64 {
	t.Helper()
	var u struct {
		ID uint64 `json:"id,string"`
	}
	out := s.CLI(t, "users", "create", name)
	if err := json.Unmarshal(out, &u); err != nil {
		// Older CLIs print the ID as a number.
		var n struct{ ID uint64 }
		if err2 := json.Unmarshal(out, &n); err2 != nil {
			t.Fatalf("headscale users create: %v\n%s", err, out)
		}
		u.ID = n.ID
	}
	return u.ID
}

// PreAuthKey creates a reusable pre-auth key of the user, valid for an
// hour, as `tailscale up --authkey` takes it.
func (s *Server) PreAuthKey(t testing.TB, user uint64) string {
	t.Helper()
	var k struct{ Key string }
	out := s.CLI(t, "preauthkeys", "create", "--user", strconv.FormatUint(user, 10), "--reusable", "--expiration", "1h")
	if err := json.Unmarshal(out, &k); err != nil || k.Key == "" {
		t.Fatalf("headscale preauthkeys create: %v\n%s", err, out)
	}
	return k.Key
}

// NodeKeys returns the node keys ("nodekey:…") of the nodes registered
// with headscale.
func (s *Server) NodeKeys(t testing.TB) []string {
	t.Helper()
	var nodes []struct {
		NodeKey string `json:"node_key"`
	}
	out := s.CLI(t, "nodes", "list")
	if err := json.Unmarshal(out, &nodes); err != nil {
		t.Fatalf("headscale nodes list: %v\n%s", err, out)
	}
	var keys []string
	for _, n := range nodes {
		keys = append(keys, n.NodeKey)
	}
	return keys
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineLogger forwards each line to logf and keeps a copy.
type lineLogger struct {
	logf func(string, ...any)
	also *syncBuffer
	mu   sync.Mutex
	part []byte
}

func (w *lineLogger) Write(p []byte) (int, error) {
	w.also.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.logf("headscale: %s", w.part[:i])
		w.part = w.part[i+1:]
	}
	return len(p), nil
}
