package alidnstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/homederp/homederp/ddns/ddnstest"
)

// authorization is a parsed ACS3-HMAC-SHA256 Authorization header.
type authorization struct {
	keyID         string
	signedHeaders []string
	signature     string
}

// parseAuth parses "ACS3-HMAC-SHA256 Credential=ID,SignedHeaders=a;b,Signature=hex".
func parseAuth(h string) (authorization, bool) {
	alg, rest, ok := strings.Cut(h, " ")
	if !ok || alg != "ACS3-HMAC-SHA256" {
		return authorization{}, false
	}
	var a authorization
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return authorization{}, false
		}
		switch k {
		case "Credential":
			a.keyID = v
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	return a, a.keyID != "" && a.signature != "" && len(a.signedHeaders) > 0
}

// rfc3986 percent-encodes as Alibaba Cloud's canonical query string wants:
// only unreserved characters (letters, digits, "-", "_", ".", "~") stay.
func rfc3986(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

// expectedSignature computes the V3 signature of r as Alibaba Cloud's
// documentation ("V3 request structure and signature") specifies: a
// canonical request of the method, the path, the sorted RFC 3986-encoded
// query, the signed headers (lower-case names, trimmed values), the signed
// header list and the hashed payload (x-acs-content-sha256); the string
// "ACS3-HMAC-SHA256\n" and the canonical request's SHA-256; an
// HMAC-SHA256 of that with the AccessKey secret.
func expectedSignature(r *http.Request, a authorization, secret string) string {
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var query []string
	for _, k := range keys {
		for _, v := range q[k] {
			query = append(query, rfc3986(k)+"="+rfc3986(v))
		}
	}
	var headers strings.Builder
	for _, h := range a.signedHeaders {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		headers.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canonical := strings.Join([]string{r.Method, path, strings.Join(query, "&"), headers.String(),
		strings.Join(a.signedHeaders, ";"), r.Header.Get("x-acs-content-sha256")}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("ACS3-HMAC-SHA256\n" + hex.EncodeToString(sum[:])))
	return hex.EncodeToString(m.Sum(nil))
}

// maxSkew is how far x-acs-date may be from the server's clock.
const maxSkew = 15 * time.Minute

// requiredSigned are the headers every V3 signature must cover.
var requiredSigned = []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}

// authenticate checks r's V3 signature and returns the key and its ID, or
// the error Alibaba Cloud answers.
func (s *Server) authenticate(r *http.Request, body []byte) (string, ddnstest.Key, *apiError) {
	a, ok := parseAuth(r.Header.Get("Authorization"))
	if !ok {
		return "", ddnstest.Key{}, &apiError{400, "IncompleteSignature", "The request signature does not conform to Aliyun standards."}
	}
	for _, h := range requiredSigned {
		if !slices.Contains(a.signedHeaders, h) {
			return "", ddnstest.Key{}, &apiError{400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: it must sign " + h + "."}
		}
	}
	sum := sha256.Sum256(body)
	if r.Header.Get("x-acs-content-sha256") != hex.EncodeToString(sum[:]) {
		return "", ddnstest.Key{}, &apiError{400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: x-acs-content-sha256 is not the body's hash."}
	}
	date, err := time.Parse("2006-01-02T15:04:05Z", r.Header.Get("x-acs-date"))
	if err != nil {
		return "", ddnstest.Key{}, &apiError{400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."}
	}
	if d := s.opts.Time().Sub(date); d > maxSkew || d < -maxSkew {
		return "", ddnstest.Key{}, &apiError{400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."}
	}
	k, secret, ok := s.keys.Get(a.keyID)
	switch {
	case !ok:
		return "", k, &apiError{404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."}
	case k.Disabled:
		return "", k, &apiError{400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled."}
	}
	if !hmac.Equal([]byte(expectedSignature(r, a, secret)), []byte(a.signature)) {
		return "", k, &apiError{400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nonce := r.Header.Get("x-acs-signature-nonce")
	if s.nonces[nonce] {
		return "", k, &apiError{400, "SignatureNonceUsed", "Specified signature nonce was used already."}
	}
	s.nonces[nonce] = true
	return a.keyID, k, nil
}

// form is the request's parameters: the query and, for a form body, the
// body.
func form(r *http.Request, body []byte) url.Values {
	v := r.URL.Query()
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if b, err := url.ParseQuery(string(body)); err == nil {
			for k, vs := range b {
				v[k] = append(v[k], vs...)
			}
		}
	}
	return v
}
