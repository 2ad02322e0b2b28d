package relay

import (
	"expvar"
	"net/http"

	"github.com/homederp/homederp/internal/usermsg"
	"tailscale.com/metrics"
	"tailscale.com/tsweb/varz"
)

// Status returns a snapshot of the relay for the web UI.
func (s *Server) Status() Status {
	s.mu.Lock()
	p := s.policy
	retired := s.retired
	started := s.started
	s.mu.Unlock()
	g := s.gen.Load()

	st := Status{
		Hostname:              s.cfg.Hostname,
		Started:               started,
		VerifyMode:            string(p.Verify.normalized().Mode),
		ClientRateBytesPerSec: p.ClientRate.BytesPerSec,
		ClientRateBurstBytes:  p.ClientRate.BurstBytes,
		AcceptPerSec:          p.AcceptRate.PerSec,
		AcceptBurst:           p.AcceptRate.Burst,
		ConnsAccepted:         s.accept.accepted.Load(),
		ConnsRejected:         s.accept.rejected.Load(),
	}
	if len(s.derpLns) > 0 {
		for _, a := range s.DERPAddrs() {
			st.DERPAddrs = append(st.DERPAddrs, a.String())
		}
		for _, a := range s.STUNAddrs() {
			st.STUNAddrs = append(st.STUNAddrs, a.String())
		}
		stun := readSTUNCounts().sub(s.stunBase)
		st.STUNRequests = stun.success
		st.STUNErrors = stun.notSTUN + stun.readErr + stun.writeErr
	}

	conns := intVar(g.vars.Get("gauge_current_connections"))
	watchers := intVar(g.vars.Get("gauge_watchers"))
	st.ClientsConnected = int(max(conns-watchers, 0))
	c := retired.add(g.counters())
	st.BytesReceived, st.BytesSent = c.bytesRecv, c.bytesSent
	st.Refused, st.RefusedNoVerdict, st.LastRefusal = s.refusals.stats()
	st.AdmissionsPending = len(s.admit.pending)
	st.Reach = s.reach.status()

	if st.VerifyMode == string(VerifyTailscaled) {
		ts := s.ts.get()
		st.TailscaledState = ts.state
		if ts.state == "" {
			st.TailscaledState = "not checked yet"
		}
		st.TailscaledPeers = ts.peers
		if ts.why != nil {
			en, m := usermsg.Say("relaystate.ts_unreachable", "unreachable: {{.Why}}", map[string]any{"Why": ts.why})
			st.note(en, m)
		}
		var m usermsg.Msg
		st.VerifyProblem, m = verifyProblem(p.Verify, ts)
		st.note(st.VerifyProblem, m)
	}

	pin := false
	if d, ok := s.CertSource().(CertDescriber); ok {
		info := d.CertInfo()
		st.CertMode, st.CertError, pin = info.Mode, info.Error, info.Pin
		st.note(info.Error, info.Msg)
	}
	if _, leaf, err := s.Certificate(); err != nil {
		if st.CertError == "" {
			var m usermsg.Msg
			st.CertError, m = usermsg.Say("relaystate.no_cert", "no certificate to serve: {{.Err}}", map[string]any{"Err": err.Error()})
			st.note(st.CertError, m)
		}
	} else {
		st.CertNotAfter = leaf.NotAfter
		st.CertIssuer = issuerName(leaf)
		st.CertPinned = IsSelfSigned(leaf) || pin
	}

	st.Mesh = g.mesh.status()
	for _, m := range st.Mesh {
		if m.Connected {
			st.MeshPeers++
		}
	}
	if len(p.MeshWith) > 0 && p.MeshKey == "" {
		var m usermsg.Msg
		st.MeshError, m = usermsg.Say("relaystate.mesh_no_key", "mesh peers are listed but no mesh key is set; the mesh is off", nil)
		st.note(st.MeshError, m)
	}
	return st
}

// MetricsHandler serves the relay's metrics in Prometheus text format:
// derpserver's counters (as derper's /debug/varz shows them, prefix
// derp_), the STUN counters (stun_, global to the process as upstream
// keeps them), derpserver's drop counters, and the relay's own
// (homederp_relay_: refusals, accept limit, certificate expiry,
// tailscaled and mesh state). It is meant for the LAN web UI; the public
// DERP port has no metrics and no /debug/.
//
// Nothing is published to the global expvar registry, so several relays
// can live in one process (as in tests).
func (s *Server) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := s.Status()
		own := new(metrics.Set)
		gauge := func(name string, v int64) {
			n := new(expvar.Int)
			n.Set(v)
			own.Set("gauge_"+name, n)
		}
		counter := func(name string, v int64) {
			n := new(expvar.Int)
			n.Set(v)
			own.Set("counter_"+name, n)
		}
		counter("refused_clients", st.Refused)
		counter("refused_clients_no_verdict", st.RefusedNoVerdict)
		gauge("admission_checks_pending", int64(st.AdmissionsPending))
		counter("accept_limit_accepted", st.ConnsAccepted)
		counter("accept_limit_rejected", st.ConnsRejected)
		gauge("clients_connected", int64(st.ClientsConnected))
		gauge("mesh_peers_connected", int64(st.MeshPeers))
		gauge("mesh_peers_configured", int64(len(st.Mesh)))
		if !st.CertNotAfter.IsZero() {
			gauge("cert_not_after_seconds", st.CertNotAfter.Unix())
		}
		gauge("cert_error", boolInt(st.CertError != ""))
		if st.VerifyMode == string(VerifyTailscaled) {
			gauge("tailscaled_running", boolInt(st.TailscaledState == "Running"))
			gauge("tailscaled_peers", int64(st.TailscaledPeers))
		}
		gauge("client_rate_bytes_per_second", st.ClientRateBytesPerSec)
		gauge("reach_internet_addresses", int64(st.Reach.Clients))
		counter("reach_lan_connections", st.Reach.LANConnections)

		vars := []expvar.KeyValue{
			{Key: "derp", Value: s.gen.Load().vars},
			{Key: "homederp_relay", Value: own},
		}
		// gauge_goroutines and process_start_unix_time come from
		// tsweb/varz (the process's): a box that runs for a year
		// should show a leak in its metrics.
		for _, name := range []string{"stun", "derp_packets_dropped", "derp_bytes_dropped", "derp_websocket_accepts", "gauge_goroutines", "process_start_unix_time"} {
			if v := expvar.Get(name); v != nil {
				vars = append(vars, expvar.KeyValue{Key: name, Value: v})
			}
		}
		varz.ExpvarDoHandler(func(f func(expvar.KeyValue)) {
			for _, kv := range vars {
				f(kv)
			}
		})(w, r)
	})
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// stunCounts are upstream stunserver's process-global counters.
type stunCounts struct {
	success, notSTUN, readErr, writeErr int64
}

func readSTUNCounts() stunCounts {
	set, ok := expvar.Get("stun").(*metrics.Set)
	if !ok {
		return stunCounts{}
	}
	lm, ok := set.Get("counter_requests").(*metrics.LabelMap)
	if !ok {
		return stunCounts{}
	}
	get := func(k string) int64 {
		if v, ok := lm.Map.Get(k).(*expvar.Int); ok {
			return v.Value()
		}
		return 0
	}
	return stunCounts{get("success"), get("not_stun"), get("read_error"), get("write_error")}
}

func (a stunCounts) sub(b stunCounts) stunCounts {
	return stunCounts{a.success - b.success, a.notSTUN - b.notSTUN, a.readErr - b.readErr, a.writeErr - b.writeErr}
}
