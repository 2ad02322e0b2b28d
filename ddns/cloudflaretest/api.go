package cloudflaretest

// The v4 API endpoints: authentication, rate limit, zones and DNS records.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/ddns/ddnstest"
)

type apiError struct {
	Code       int        `json:"code"`
	Message    string     `json:"message"`
	ErrorChain []apiError `json:"error_chain,omitempty"`
}

type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
	TotalPages int `json:"total_pages"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, errs ...apiError) {
	writeJSON(w, status, map[string]any{"success": false, "errors": errs, "messages": []any{}, "result": nil})
}

func ok(w http.ResponseWriter, result any, info *resultInfo) {
	body := map[string]any{"success": true, "errors": []any{}, "messages": []any{}, "result": result}
	if info != nil {
		body["result_info"] = info
	}
	writeJSON(w, http.StatusOK, body)
}

func statusError(status int) apiError {
	switch {
	case status == http.StatusTooManyRequests:
		return apiError{Code: 971, Message: "Please wait and consider throttling your request speed"}
	case status >= 500:
		return apiError{Code: 10000 + status, Message: http.StatusText(status)}
	}
	return apiError{Code: 10000, Message: http.StatusText(status)}
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body != "" {
		ddnstest.WriteRaw(w, f.Status, cmp.Or(f.ContentType, "application/json"), f.Body)
		return
	}
	fail(w, f.Status, statusError(f.Status))
}

// route names a request for counting, e.g. "GET /zones/:zone/dns_records".
func route(method string, parts []string) string {
	var b strings.Builder
	b.WriteString(method)
	for i, p := range parts {
		b.WriteString("/")
		switch {
		case i == 1 && parts[0] == "zones":
			b.WriteString(":zone")
		case i == 3 && parts[2] == "dns_records":
			b.WriteString(":id")
		default:
			b.WriteString(p)
		}
	}
	return strings.Replace(b.String(), method+"/", method+" /", 1)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/client/v4")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	rt := route(r.Method, parts)
	if s.Intercept(w, r, rt, writeFault) {
		return
	}

	tokenStr, tok, done := s.authenticate(w, r, rt)
	if done {
		return
	}
	if s.rateLimited(w, tokenStr) {
		return
	}
	switch {
	case rt == "GET /user/tokens/verify":
		s.verify(w, tokenStr, tok)
	case tok.Status != "active":
		fail(w, http.StatusForbidden, apiError{Code: 9109, Message: "Invalid access token"})
	case rt == "GET /zones":
		s.listZones(w, r, tok)
	case rt == "GET /zones/:zone":
		if z := s.zoneFor(w, parts[1], tok); z != nil {
			ok(w, zoneJSON(z), nil)
		}
	case rt == "GET /zones/:zone/dns_records":
		if z := s.zoneFor(w, parts[1], tok); z != nil {
			s.listRecords(w, r, z)
		}
	case rt == "POST /zones/:zone/dns_records":
		if z := s.zoneFor(w, parts[1], tok); z != nil && s.canEdit(w, tok) {
			s.createRecord(w, r, z)
		}
	case rt == "GET /zones/:zone/dns_records/:id":
		if z := s.zoneFor(w, parts[1], tok); z != nil {
			s.getRecord(w, z, parts[3])
		}
	case rt == "PATCH /zones/:zone/dns_records/:id", rt == "PUT /zones/:zone/dns_records/:id":
		if z := s.zoneFor(w, parts[1], tok); z != nil && s.canEdit(w, tok) {
			s.updateRecord(w, r, z, parts[3], r.Method == http.MethodPut)
		}
	case rt == "DELETE /zones/:zone/dns_records/:id":
		if z := s.zoneFor(w, parts[1], tok); z != nil && s.canEdit(w, tok) {
			s.deleteRecord(w, z, parts[3])
		}
	default:
		fail(w, http.StatusBadRequest, apiError{Code: 7000, Message: "No route for that URI"})
	}
}

// authenticate checks the Authorization header as Cloudflare does.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, rt string) (string, *Token, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		fail(w, http.StatusBadRequest, apiError{Code: 9106, Message: "Missing X-Auth-Email header"}, apiError{Code: 9107, Message: "Missing X-Auth-Key header"})
		return "", nil, true
	}
	tokenStr, found := strings.CutPrefix(h, "Bearer ")
	if !found || !wellFormed(tokenStr) {
		fail(w, http.StatusBadRequest, apiError{Code: 6003, Message: "Invalid request headers",
			ErrorChain: []apiError{{Code: 6111, Message: "Invalid format for Authorization header"}}})
		return "", nil, true
	}
	s.mu.Lock()
	tok := s.tokens[tokenStr]
	s.mu.Unlock()
	if tok == nil {
		if rt == "GET /user/tokens/verify" {
			fail(w, http.StatusUnauthorized, apiError{Code: 1000, Message: "Invalid API Token"})
		} else {
			fail(w, http.StatusForbidden, apiError{Code: 9109, Message: "Invalid access token"})
		}
		return "", nil, true
	}
	return tokenStr, tok, false
}

func wellFormed(tok string) bool {
	if len(tok) != 40 {
		return false
	}
	for _, c := range tok {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Server) rateLimited(w http.ResponseWriter, token string) bool {
	limit := s.opts.RateLimit
	if limit <= 0 {
		limit = 1200
	}
	s.mu.Lock()
	win := s.window[token]
	if win == nil {
		win = &ddnstest.Window{}
		s.window[token] = win
	}
	over := win.Add(time.Now(), 5*time.Minute) > limit
	s.mu.Unlock()
	if over {
		ra := s.opts.RetryAfter
		if ra <= 0 {
			ra = 60
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		fail(w, http.StatusTooManyRequests, statusError(http.StatusTooManyRequests))
	}
	return over
}

func (s *Server) verify(w http.ResponseWriter, tokenStr string, tok *Token) {
	res := map[string]any{"id": fmt.Sprintf("%x", tokenStr[:16]), "status": tok.Status}
	body := map[string]any{"success": true, "errors": []any{}, "result": res,
		"messages": []map[string]any{{"code": 10000, "message": "This API Token is valid and active", "type": nil}}}
	if tok.Status != "active" {
		body["messages"] = []any{}
	}
	writeJSON(w, http.StatusOK, body)
}

func (tok *Token) allows(zone string) bool {
	if tok.Zones == nil {
		return true
	}
	for _, z := range tok.Zones {
		if strings.EqualFold(strings.TrimSuffix(z, "."), zone) {
			return true
		}
	}
	return false
}

func (s *Server) canEdit(w http.ResponseWriter, tok *Token) bool {
	if tok.ReadOnly {
		fail(w, http.StatusForbidden, apiError{Code: 10000, Message: "Authentication error"})
		return false
	}
	return true
}

func (s *Server) zoneFor(w http.ResponseWriter, id string, tok *Token) *Zone {
	s.mu.Lock()
	var z *Zone
	for _, zz := range s.zones {
		if zz.ID == id {
			z = zz
		}
	}
	s.mu.Unlock()
	if z == nil {
		fail(w, http.StatusBadRequest, apiError{Code: 7003, Message: fmt.Sprintf("Could not route to /zones/%s, perhaps your object identifier is invalid?", id)})
		return nil
	}
	if !tok.allows(z.Name) {
		fail(w, http.StatusForbidden, apiError{Code: 10000, Message: "Authentication error"})
		return nil
	}
	return z
}

func zoneJSON(z *Zone) map[string]any {
	return map[string]any{
		"id": z.ID, "name": z.Name, "status": z.Status, "paused": false, "type": "full",
		"development_mode": 0, "name_servers": z.NameServers, "original_name_servers": []string{},
		"original_registrar": nil, "original_dnshost": nil,
		"created_on": "2024-01-01T00:00:00Z", "modified_on": "2024-01-01T00:00:00Z", "activated_on": "2024-01-01T00:00:00Z",
		"account":     map[string]any{"id": "0123456789abcdef0123456789abcdef", "name": "Home"},
		"permissions": []string{"#dns_records:edit", "#dns_records:read", "#zone:read"},
		"plan":        map[string]any{"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "price": 0, "currency": "USD", "frequency": "", "legacy_id": "free", "is_subscribed": false, "can_subscribe": false},
	}
}

// paginate applies page and per_page as Cloudflare does.
func paginate[T any](r *http.Request, all []T, defPer, maxPer int) ([]T, *resultInfo, *apiError) {
	q := r.URL.Query()
	page, per := 1, defPer
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, nil, &apiError{Code: 1004, Message: "DNS Validation Error", ErrorChain: []apiError{{Code: 9001, Message: "page must be a positive integer"}}}
		}
		page = n
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, nil, &apiError{Code: 1004, Message: "DNS Validation Error", ErrorChain: []apiError{{Code: 9002, Message: "per_page must be a positive integer"}}}
		}
		per = min(n, maxPer)
	}
	total := len(all)
	pages := (total + per - 1) / per
	start := min((page-1)*per, total)
	end := min(start+per, total)
	out := all[start:end]
	return out, &resultInfo{Page: page, PerPage: per, Count: len(out), TotalCount: total, TotalPages: pages}, nil
}

func (s *Server) listZones(w http.ResponseWriter, r *http.Request, tok *Token) {
	q := r.URL.Query()
	name := strings.ToLower(strings.TrimSuffix(q.Get("name"), "."))
	status := q.Get("status")
	s.mu.Lock()
	var zs []map[string]any
	for _, z := range s.zones {
		if !tok.allows(z.Name) || name != "" && z.Name != name || status != "" && z.Status != status {
			continue
		}
		zs = append(zs, zoneJSON(z))
	}
	s.mu.Unlock()
	if zs == nil {
		zs = []map[string]any{}
	}
	page, info, e := paginate(r, zs, 20, 50)
	if e != nil {
		fail(w, http.StatusBadRequest, *e)
		return
	}
	ok(w, page, info)
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request, z *Zone) {
	q := r.URL.Query()
	typ := strings.ToUpper(q.Get("type"))
	name := q.Get("name")
	if v := q.Get("name.exact"); v != "" {
		name = v
	}
	content := q.Get("content")
	if v := q.Get("content.exact"); v != "" {
		content = v
	}
	contains := q.Get("content.contains")
	s.mu.Lock()
	var recs []Record
	for _, rec := range s.records {
		if rec.ZoneID != z.ID ||
			typ != "" && rec.Type != typ ||
			name != "" && rec.Name != fqdn(name, z.Name) ||
			content != "" && rec.Content != content ||
			contains != "" && !strings.Contains(rec.Content, contains) {
			continue
		}
		recs = append(recs, *rec)
	}
	s.mu.Unlock()
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].CreatedOn.Before(recs[j].CreatedOn) })
	if recs == nil {
		recs = []Record{}
	}
	page, info, e := paginate(r, recs, 100, 5000000)
	if e != nil {
		fail(w, http.StatusBadRequest, *e)
		return
	}
	ok(w, page, info)
}

func (s *Server) getRecord(w http.ResponseWriter, z *Zone, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.records {
		if rec.ZoneID == z.ID && rec.ID == id {
			ok(w, *rec, nil)
			return
		}
	}
	fail(w, http.StatusNotFound, apiError{Code: 81044, Message: "Record does not exist."})
}

func (s *Server) deleteRecord(w http.ResponseWriter, z *Zone, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, rec := range s.records {
		if rec.ZoneID == z.ID && rec.ID == id {
			s.records = append(s.records[:i], s.records[i+1:]...)
			s.CountWrite()
			ok(w, map[string]string{"id": id}, nil)
			return
		}
	}
	fail(w, http.StatusNotFound, apiError{Code: 81044, Message: "Record does not exist."})
}
