package tencentcloudtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/ddns/ddnstest"
)

// signature is a parsed TC3-HMAC-SHA256 Authorization header.
type signature struct {
	secretID, date, service string
	signedHeaders           []string
	sig                     string
}

// parseAuth parses "TC3-HMAC-SHA256 Credential=ID/2019-02-25/dnspod/tc3_request,
// SignedHeaders=content-type;host, Signature=hex".
func parseAuth(h string) (signature, bool) {
	alg, rest, ok := strings.Cut(h, " ")
	if !ok || alg != "TC3-HMAC-SHA256" {
		return signature{}, false
	}
	var s signature
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return signature{}, false
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 4 || f[3] != "tc3_request" {
				return signature{}, false
			}
			s.secretID, s.date, s.service = f[0], f[1], f[2]
		case "SignedHeaders":
			s.signedHeaders = strings.Split(v, ";")
		case "Signature":
			s.sig = v
		}
	}
	return s, s.secretID != "" && s.sig != "" && len(s.signedHeaders) > 0
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// expectedSignature computes the TC3-HMAC-SHA256 signature of r as
// Tencent Cloud's documentation ("Signature v3") specifies: a canonical
// request of method, URI "/", query, the signed headers (names and values
// lower-cased, values trimmed), the signed header list and the payload's
// SHA-256; a string to sign of the algorithm, the timestamp, the
// credential scope and the canonical request's SHA-256; and a key derived
// from "TC3"+SecretKey through the date, the service and "tc3_request".
func expectedSignature(r *http.Request, body []byte, s signature, secretKey, timestamp string) string {
	var canonHeaders strings.Builder
	for _, h := range s.signedHeaders {
		v := r.Header.Get(h)
		if strings.EqualFold(h, "host") {
			v = r.Host
		}
		canonHeaders.WriteString(strings.ToLower(h) + ":" + strings.ToLower(strings.TrimSpace(v)) + "\n")
	}
	canonical := strings.Join([]string{
		r.Method,
		"/",
		r.URL.RawQuery,
		canonHeaders.String(),
		strings.Join(s.signedHeaders, ";"),
		sha256Hex(body),
	}, "\n")
	scope := s.date + "/" + s.service + "/tc3_request"
	toSign := "TC3-HMAC-SHA256\n" + timestamp + "\n" + scope + "\n" + sha256Hex([]byte(canonical))
	kDate := hmacSHA256([]byte("TC3"+secretKey), s.date)
	kService := hmacSHA256(kDate, s.service)
	kSigning := hmacSHA256(kService, "tc3_request")
	return hex.EncodeToString(hmacSHA256(kSigning, toSign))
}

const msgSignatureFailure = "The provided credentials could not be validated. Please check your signature is correct."

// maxSkew is how far a request's X-TC-Timestamp may be from the server's
// clock before AuthFailure.SignatureExpire.
const maxSkew = 5 * time.Minute

// authenticate checks the request's signature and returns the key and its
// SecretId, or the error code and message Tencent Cloud answers.
func (s *Server) authenticate(r *http.Request, body []byte) (string, ddnstest.Key, string, string) {
	sig, ok := parseAuth(r.Header.Get("Authorization"))
	if !ok {
		return "", ddnstest.Key{}, "AuthFailure.InvalidAuthorization", "Authorization header format error."
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if err != nil {
		return "", ddnstest.Key{}, "MissingParameter", "The request is missing a required parameter `X-TC-Timestamp`."
	}
	now := s.opts.Time()
	signed := time.Unix(ts, 0)
	if d := now.Sub(signed); d > maxSkew || d < -maxSkew {
		return "", ddnstest.Key{}, "AuthFailure.SignatureExpire", "Signature expired. Timestamp is " + strconv.FormatInt(ts, 10) + ", current server time is " + strconv.FormatInt(now.Unix(), 10) + "."
	}
	if sig.date != signed.UTC().Format(time.DateOnly) || sig.service != "dnspod" {
		return "", ddnstest.Key{}, "AuthFailure.SignatureFailure", msgSignatureFailure
	}
	hasHost, hasType := false, false
	for _, h := range sig.signedHeaders {
		hasHost = hasHost || h == "host"
		hasType = hasType || h == "content-type"
	}
	if !hasHost || !hasType {
		return "", ddnstest.Key{}, "AuthFailure.SignatureFailure", msgSignatureFailure
	}
	k, secret, ok := s.keys.Get(sig.secretID)
	if !ok || k.Disabled {
		return "", k, "AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your SecretId is correct."
	}
	want := expectedSignature(r, body, sig, secret, r.Header.Get("X-TC-Timestamp"))
	if !hmac.Equal([]byte(want), []byte(sig.sig)) {
		return "", k, "AuthFailure.SignatureFailure", msgSignatureFailure
	}
	return sig.secretID, k, "", ""
}
