package alidns

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// sign adds Alibaba Cloud's V3 signature (ACS3-HMAC-SHA256) to req, whose
// body is body, for action of API version, as of now. It is the scheme libdns/alidns v1.0.7 uses
// (there unexported): x-acs-* headers, a canonical request of method,
// path, query, the signed headers (host, content-type and every x-acs-*)
// and the body's SHA-256, and an HMAC-SHA256 of its hash with the
// AccessKey secret.
func sign(req *http.Request, body []byte, action, version, keyID, secret string, now time.Time, nonce string) {
	sum := sha256.Sum256(body)
	req.Header.Set("x-acs-action", action)
	req.Header.Set("x-acs-version", version)
	req.Header.Set("x-acs-date", now.UTC().Format("2006-01-02T15:04:05Z"))
	req.Header.Set("x-acs-signature-nonce", nonce)
	req.Header.Set("x-acs-content-sha256", hex.EncodeToString(sum[:]))

	headers := map[string]string{"host": req.URL.Host}
	for k, v := range req.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-acs-") || lk == "content-type" {
			headers[lk] = strings.TrimSpace(v[0])
		}
	}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var canonHeaders strings.Builder
	for _, k := range names {
		canonHeaders.WriteString(k + ":" + headers[k] + "\n")
	}
	signed := strings.Join(names, ";")
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canonical := strings.Join([]string{
		req.Method, path, canonicalQuery(req.URL.Query()), canonHeaders.String(), signed, hex.EncodeToString(sum[:]),
	}, "\n")
	hashed := sha256.Sum256([]byte(canonical))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("ACS3-HMAC-SHA256\n" + hex.EncodeToString(hashed[:])))
	req.Header.Set("Authorization", "ACS3-HMAC-SHA256 Credential="+keyID+",SignedHeaders="+signed+",Signature="+hex.EncodeToString(m.Sum(nil)))
}

// canonicalQuery sorts the parameters and percent-encodes them as RFC 3986
// wants (space as %20, "~" plain).
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range q[k] {
			parts = append(parts, percent(k)+"="+percent(v))
		}
	}
	return strings.Join(parts, "&")
}

func percent(s string) string {
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(s))
}

// newNonce returns a random x-acs-signature-nonce.
func newNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
