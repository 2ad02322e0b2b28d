package relay

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/paths"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

// Admission: every verdict on a connecting client is the relay's own, with
// a deadline and a cap on checks in flight.
//
// derpserver asks tailscaled (WhoIsNodeKey) or a verify URL itself, with
// the connection's context, which has no deadline for tailscaled: a hung
// (SIGSTOPped) tailscaled left each connecting client's goroutine stuck,
// and derpserver.Close, which waits for them, with it. So the relay never
// configures derpserver's own tailscaled check. Every generation with an
// admission policy instead points derpserver's verify URL at an in-process
// gate (the URL scheme admitScheme, registered with http.DefaultTransport,
// which derpserver's requests go through; nothing listens on a socket).
// derpserver posts tailcfg.DERPAdmitClientRequest to it exactly as it would
// to headscale's /verify, and the gate answers within the verdict
// deadline: tailscaled (or the real verify URL) said yes or no, or it did
// not answer in time and the client is refused (fail closed). Mesh peers
// presenting the mesh key never reach the gate: derpserver admits them
// first, as before.
//
// Retiring a generation closes its gate, which ends its checks in flight
// at once, so derpserver.Close never waits for a verdict.

// Defaults for the admission limits.
const (
	// DefaultVerdictTimeout bounds one admission check. A healthy
	// tailscaled answers WhoIsNodeKey in about a millisecond and a
	// headscale /verify in a round trip; past this the client is
	// refused, so a hung checker costs a client at most this much.
	DefaultVerdictTimeout = 1500 * time.Millisecond
	// DefaultMaxPendingVerdicts caps the checks in flight. Beyond it
	// a client is refused at once (it retries within seconds) instead
	// of adding one more goroutine waiting on a stuck checker.
	DefaultMaxPendingVerdicts = 64
)

const admitScheme = "homederp-admit"

// verdict is the outcome of one admission check.
type verdict struct {
	allow    bool
	answered bool   // the checker said yes or no; false: no verdict, refused
	reason   string // for a refusal, in plain words
}

// admitter runs the admission checks of a relay, for every generation.
type admitter struct {
	timeout time.Duration
	pending chan struct{} // one token per check in flight
	logf    logger.Logf
	// failOpenLogf keeps the fail-open notice to a couple of lines a
	// minute.
	failOpenLogf logger.Logf
	refusals     *refusalLog
	ts           *tailscaledWatch // told what the checks see of tailscaled
	now          func() time.Time
	http         *http.Client // for verify URLs

	admitted, refused, noVerdict atomic.Int64

	mu           sync.Mutex
	lcs          map[string]*local.Client // by socket path
	lcTransports []*http.Transport        // theirs, for close
}

func newAdmitter(cfg Config, logf logger.Logf, refusals *refusalLog) *admitter {
	return &admitter{
		timeout:      cfg.VerdictTimeout,
		pending:      make(chan struct{}, cfg.MaxPendingVerdicts),
		logf:         logf,
		failOpenLogf: logger.RateLimitedFn(logf, time.Minute, 2, 10),
		refusals:     refusals,
		now:          cfg.Now,
		// Its own transport, so that close can drop its connections.
		http: &http.Client{Transport: cloneDefaultTransport()},
	}
}

func cloneDefaultTransport() http.RoundTripper {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return http.DefaultTransport
}

// close drops the idle connections to tailscaled and the verify URL.
func (a *admitter) close() {
	a.http.CloseIdleConnections()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.lcTransports {
		t.CloseIdleConnections()
	}
}

// localClient is the LocalAPI client for socket ("" = the platform
// default), one per socket, shared by the admission checks and the
// tailscaled watch, on a transport the relay closes when it closes.
func (a *admitter) localClient(socket string) *local.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	if lc := a.lcs[socket]; lc != nil {
		return lc
	}
	path := cmp.Or(socket, paths.DefaultTailscaledSocket())
	// A plain dial: safesocket's retries while "tailscaled is probably
	// still starting" would turn a missing socket into a timeout.
	var d net.Dialer
	t := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", path)
	}}
	a.lcTransports = append(a.lcTransports, t)
	lc := &local.Client{Socket: socket, UseSocketOnly: socket != "", Transport: t}
	if a.lcs == nil {
		a.lcs = map[string]*local.Client{}
	}
	a.lcs[socket] = lc
	return lc
}

// gate is one generation's admission policy, as derpserver reaches it.
type gate struct {
	a      *admitter
	v      Verify
	url    string // what derpserver posts to, e.g. "homederp-admit://7/verify"
	id     string
	ctx    context.Context // canceled when the generation retires
	cancel context.CancelFunc
}

// gates are the open gates by id, for admitTransport.
var gates struct {
	sync.Mutex
	m    map[string]*gate
	next int
}

// registerAdmitScheme routes admitScheme URLs of http.DefaultTransport to
// the gates, once per process.
var registerAdmitScheme = sync.OnceValue(func() error {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return fmt.Errorf("relay: http.DefaultTransport is a %T, not an *http.Transport; client admission needs it", http.DefaultTransport)
	}
	t.RegisterProtocol(admitScheme, admitTransport{})
	return nil
})

// newGate opens a gate for v (which is not VerifyOff).
func (a *admitter) newGate(v Verify) (*gate, error) {
	if err := registerAdmitScheme(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gate{a: a, v: v, ctx: ctx, cancel: cancel}
	gates.Lock()
	defer gates.Unlock()
	gates.next++
	g.id = strconv.Itoa(gates.next)
	g.url = admitScheme + "://" + g.id + "/verify"
	if gates.m == nil {
		gates.m = map[string]*gate{}
	}
	gates.m[g.id] = g
	return g, nil
}

// close ends the gate's checks in flight (each refuses its client at
// once) and refuses every later one.
func (g *gate) close() {
	g.cancel()
	gates.Lock()
	delete(gates.m, g.id)
	gates.Unlock()
}

// admitTransport answers derpserver's admission requests from the gate
// the URL names.
type admitTransport struct{}

func (admitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	defer req.Body.Close()
	gates.Lock()
	g := gates.m[req.URL.Host]
	gates.Unlock()
	if g == nil {
		return nil, errors.New("the relay's admission policy changed; reconnect")
	}
	var ar tailcfg.DERPAdmitClientRequest
	if err := json.NewDecoder(io.LimitReader(req.Body, 4<<10)).Decode(&ar); err != nil {
		return nil, fmt.Errorf("reading the admission request: %w", err)
	}
	v := g.check(req.Context(), ar.NodePublic, ar.Source)
	if !v.answered {
		return nil, errors.New(v.reason)
	}
	body, err := json.Marshal(tailcfg.DERPAdmitClientResponse{Allow: v.allow})
	if err != nil {
		return nil, err
	}
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

// check decides on client k connecting from src within the verdict
// deadline, counts the outcome and notes a refusal.
func (g *gate) check(ctx context.Context, k key.NodePublic, src netip.Addr) verdict {
	a := g.a
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	defer context.AfterFunc(g.ctx, cancel)()

	var v verdict
	select {
	case a.pending <- struct{}{}:
		v = g.ask(ctx, k, src)
		<-a.pending
	default:
		v = verdict{reason: fmt.Sprintf("%d admission checks are already waiting for an answer; refused without asking", cap(a.pending))}
	}
	if g.ctx.Err() != nil && !v.answered {
		v.reason = "the admission policy changed while the check was waiting"
	}
	switch {
	case v.allow:
		a.admitted.Add(1)
		return v
	case v.answered:
		a.refused.Add(1)
	default:
		a.noVerdict.Add(1)
	}
	a.refusals.note(Refusal{Time: a.now(), Client: k.String(), Remote: src.String(), Reason: v.reason, NoVerdict: !v.answered})
	return v
}

// ask puts the question to the gate's checker.
func (g *gate) ask(ctx context.Context, k key.NodePublic, src netip.Addr) verdict {
	switch g.v.Mode {
	case VerifyTailscaled:
		return g.askTailscaled(ctx, k)
	case VerifyURL:
		return g.askURL(ctx, k, src)
	}
	return verdict{reason: fmt.Sprintf("unknown verify mode %q", g.v.Mode)}
}

func (g *gate) askTailscaled(ctx context.Context, k key.NodePublic) verdict {
	_, err := g.a.localClient(g.v.TailscaledSocket).WhoIsNodeKey(ctx, k)
	switch {
	case err == nil:
		g.a.ts.noteAnswer()
		return verdict{allow: true, answered: true}
	case errors.Is(err, local.ErrPeerNotFound):
		g.a.ts.noteAnswer()
		return verdict{answered: true, reason: "not a node of the box's tailnet (the box's tailscaled does not know it)"}
	case ctx.Err() != nil && g.ctx.Err() == nil:
		g.a.ts.noteNotAnswering()
		return verdict{reason: fmt.Sprintf("the box's tailscaled did not answer within %v", g.a.timeout)}
	}
	if isVersionSkew(err) {
		return verdict{reason: "the box's tailscaled is too old for this relay (tailscale issue 12617)"}
	}
	return verdict{reason: "cannot ask the box's tailscaled: " + plainLocalAPIError(err).Error()}
}

func (g *gate) askURL(ctx context.Context, k key.NodePublic, src netip.Addr) verdict {
	body, err := json.Marshal(tailcfg.DERPAdmitClientRequest{NodePublic: k, Source: src})
	if err != nil {
		return verdict{reason: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, "POST", g.v.URL, bytes.NewReader(body))
	if err != nil {
		return verdict{reason: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := g.a.http.Do(req)
	if err != nil {
		if g.v.URLFailOpen && g.ctx.Err() == nil {
			g.a.failOpenLogf("relay: the verify URL is unreachable (%v); admitting client %v (fail-open is on)", err, k)
			return verdict{allow: true, answered: true}
		}
		if ctx.Err() != nil && g.ctx.Err() == nil {
			return verdict{reason: fmt.Sprintf("the verify URL did not answer within %v", g.a.timeout)}
		}
		return verdict{reason: fmt.Sprintf("the verify URL is unreachable: %v", err)}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		// As derpserver: an answer that is not a verdict refuses,
		// fail-open or not (the verifier is up, and broken).
		return verdict{reason: "the verify URL answered " + res.Status}
	}
	var ar tailcfg.DERPAdmitClientResponse
	if err := json.NewDecoder(io.LimitReader(res.Body, 4<<10)).Decode(&ar); err != nil {
		return verdict{reason: fmt.Sprintf("the verify URL's answer is not a verdict: %v", err)}
	}
	if !ar.Allow {
		return verdict{answered: true, reason: "the verify URL said no: not allowed"}
	}
	return verdict{allow: true, answered: true}
}
