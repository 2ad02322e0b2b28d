// Package alidns updates DNS records at Alibaba Cloud DNS (AliDNS, API
// version 2015-01-09), for DDNS and the ACME DNS-01 challenge.
//
// It speaks the API itself, signed with Alibaba Cloud's V3 scheme
// (ACS3-HMAC-SHA256, the one libdns/alidns v1.0.7 uses), through
// apiclient. libdns/alidns is not used: it sends every request through
// http.DefaultClient, and its SetRecords looks the record up by the new
// value, so that a changed address is added as a second A record next to
// the old one, while an unchanged one is deleted and created again. The
// record logic (one record per name and type, never delete an address,
// zone minimum TTL) is ddns/records'.
package alidns

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/homederp/homederp/ddns/apiclient"
)

// Endpoint is AliDNS's API endpoint. Tests redirect it with the
// http.Client they pass (see alidnstest).
const Endpoint = "https://alidns.aliyuncs.com/"

// Version is the AliDNS API version.
const Version = "2015-01-09"

// DefaultLine is AliDNS's default resolution line. Records of other lines
// (split horizon by ISP) are the user's and are never touched.
const DefaultLine = "default"

const vendorName = "AliDNS"

// vendor tells apiclient how Alibaba Cloud signals trouble: HTTP 4xx/5xx
// with {"Code", "Message", "RequestId", "HostId", "Recommend"}; a Code of
// "Throttling…" when throttled, whatever the status.
var vendor = apiclient.Vendor{Name: vendorName, Classify: classify}

// decodeError returns the error in an answer, nil if there is none; a 4xx
// answer without a code is an error of its status.
func decodeError(status int, body []byte) apiclient.CodedError {
	var e struct {
		Code      string `json:"Code"`
		Message   string `json:"Message"`
		RequestID string `json:"RequestId"`
	}
	switch {
	case json.Unmarshal(body, &e) == nil && e.Code != "":
		return &APIError{Status: status, Code: e.Code, Message: e.Message, RequestID: e.RequestID}
	case status >= 400 && status < 500:
		return &APIError{Status: status, Code: "HTTP" + fmt.Sprint(status)}
	}
	return nil
}

func classify(_ *http.Request, status int, body []byte) apiclient.Verdict {
	return apiclient.CodedVerdict(vendorName, status, decodeError(status, body))
}

// call sends action with params (RPC style, as a form in the body) and
// decodes the answer into out.
func (p *Provider) call(ctx context.Context, action string, params url.Values, out any) error {
	body := []byte(params.Encode())
	// Each attempt is signed afresh: Alibaba Cloud refuses a signature
	// nonce it has seen.
	resp, err := p.client.Send(ctx, func(int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, Endpoint, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		sign(req, body, action, Version, p.keyID, p.secret, time.Now(), newNonce())
		return req, nil
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding AliDNS's answer to %s: %w", action, err)
	}
	return nil
}
