package cloudflaretest

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// recordInput is a POST/PATCH/PUT body. Pointers tell "absent" from zero,
// since PATCH changes only the fields present.
type recordInput struct {
	Type    *string `json:"type"`
	Name    *string `json:"name"`
	Content *string `json:"content"`
	TTL     *int    `json:"ttl"`
	Proxied *bool   `json:"proxied"`
	Comment *string `json:"comment"`
}

func decodeInput(w http.ResponseWriter, r *http.Request) (recordInput, bool) {
	var in recordInput
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, apiError{Code: 9207, Message: "Request body is invalid."})
		return in, false
	}
	return in, true
}

// validate checks a complete record as Cloudflare does and returns the
// error to send, or nil.
func validate(rec *Record) *apiError {
	switch rec.Type {
	case "A":
		a, err := netip.ParseAddr(rec.Content)
		if err != nil || !a.Is4() {
			return &apiError{Code: 9005, Message: "Content for A record must be a valid IPv4 address."}
		}
	case "AAAA":
		a, err := netip.ParseAddr(rec.Content)
		if err != nil || !a.Is6() || a.Is4In6() {
			return &apiError{Code: 9006, Message: "Content for AAAA record must be a valid IPv6 address."}
		}
	case "TXT", "CNAME", "MX", "NS", "CAA", "SRV", "HTTPS", "SVCB":
		if rec.Content == "" {
			return &apiError{Code: 9008, Message: "Record content is required."}
		}
	case "":
		return &apiError{Code: 9004, Message: "DNS record type is required."}
	default:
		return &apiError{Code: 9004, Message: "Invalid or unsupported DNS record type."}
	}
	if rec.TTL != 1 && (rec.TTL < 60 || rec.TTL > 86400) {
		return &apiError{Code: 9021, Message: "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic."}
	}
	if rec.Proxied && !rec.Proxiable {
		return &apiError{Code: 9004, Message: "This record type cannot be proxied."}
	}
	return nil
}

// conflict reports an existing record that rec may not live next to.
func (s *Server) conflictLocked(rec *Record, except string) *apiError {
	for _, o := range s.records {
		if o.ID == except || o.ZoneID != rec.ZoneID || o.Name != rec.Name {
			continue
		}
		switch {
		case o.Type == rec.Type && o.Content == rec.Content:
			return &apiError{Code: 81058, Message: "An identical record already exists."}
		case rec.Type == "CNAME" && (o.Type == "A" || o.Type == "AAAA" || o.Type == "CNAME"):
			return &apiError{Code: 81053, Message: "An A, AAAA, or CNAME record with that host already exists."}
		case o.Type == "CNAME" && (rec.Type == "A" || rec.Type == "AAAA"):
			return &apiError{Code: 81054, Message: "A CNAME record with that host already exists."}
		}
	}
	return nil
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request, z *Zone) {
	in, good := decodeInput(w, r)
	if !good {
		return
	}
	now := time.Now().UTC()
	rec := &Record{ID: randHex(32), ZoneID: z.ID, ZoneName: z.Name, TTL: 1, Tags: []string{}, CreatedOn: now, ModifiedOn: now}
	if in.Type != nil {
		rec.Type = strings.ToUpper(*in.Type)
	}
	if in.Name == nil || *in.Name == "" {
		fail(w, http.StatusBadRequest, apiError{Code: 9007, Message: "DNS record name is required."})
		return
	}
	rec.Name = fqdn(*in.Name, z.Name)
	if in.Content != nil {
		rec.Content = *in.Content
	}
	if in.TTL != nil {
		rec.TTL = *in.TTL
	}
	if in.Proxied != nil {
		rec.Proxied = *in.Proxied
	}
	rec.Comment = in.Comment
	rec.Proxiable = proxiable(rec.Type)
	if rec.Proxied {
		rec.TTL = 1 // proxied records are always automatic
	}
	if e := validate(rec); e != nil {
		fail(w, http.StatusBadRequest, *e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.conflictLocked(rec, ""); e != nil {
		fail(w, http.StatusBadRequest, *e)
		return
	}
	s.records = append(s.records, rec)
	s.CountWrite()
	ok(w, *rec, nil)
}

func (s *Server) updateRecord(w http.ResponseWriter, r *http.Request, z *Zone, id string, put bool) {
	in, good := decodeInput(w, r)
	if !good {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur *Record
	for _, rec := range s.records {
		if rec.ZoneID == z.ID && rec.ID == id {
			cur = rec
		}
	}
	if cur == nil {
		fail(w, http.StatusNotFound, apiError{Code: 81044, Message: "Record does not exist."})
		return
	}
	next := *cur
	if put {
		// PUT replaces the record: absent fields take their defaults.
		next.Type, next.Content, next.TTL, next.Proxied, next.Comment = "", "", 1, false, nil
	}
	if in.Type != nil {
		next.Type = strings.ToUpper(*in.Type)
	}
	if in.Name != nil && *in.Name != "" {
		next.Name = fqdn(*in.Name, z.Name)
	}
	if in.Content != nil {
		next.Content = *in.Content
	}
	if in.TTL != nil {
		next.TTL = *in.TTL
	}
	if in.Proxied != nil {
		next.Proxied = *in.Proxied
	}
	if in.Comment != nil {
		next.Comment = in.Comment
	}
	next.Proxiable = proxiable(next.Type)
	if next.Proxied {
		next.TTL = 1 // proxied records are always automatic
	}
	if e := validate(&next); e != nil {
		fail(w, http.StatusBadRequest, *e)
		return
	}
	if e := s.conflictLocked(&next, cur.ID); e != nil {
		fail(w, http.StatusBadRequest, *e)
		return
	}
	next.ModifiedOn = time.Now().UTC()
	*cur = next
	s.CountWrite()
	ok(w, next, nil)
}
