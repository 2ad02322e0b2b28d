// Package tencentcloud updates DNS records at DNSPod through the Tencent
// Cloud API 3.0 (service dnspod, version 2021-03-23), for DDNS and the
// ACME DNS-01 challenge.
//
// It signs requests with github.com/libdns/tencentcloud's TC3-HMAC-SHA256
// signer but makes the calls itself through apiclient: libdns/tencentcloud
// v1.4.3 sends every request through http.DefaultClient (no timeout, no
// way to add a budget or point it at a test server), ignores the error
// object of Tencent Cloud's answers (a refused ModifyRecord counts as
// success), and after a failed lookup modifies record ID 0. The record
// logic (one record per name and type, never delete an address, zone
// minimum TTL) is ddns/records'.
package tencentcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/homederp/homederp/ddns/apiclient"
	tclib "github.com/libdns/tencentcloud"
)

// Endpoint is DNSPod's API 3.0 endpoint, the one libdns/tencentcloud's
// signer signs for. Tests redirect it with the http.Client they pass (see
// tencentcloudtest).
const Endpoint = "https://dnspod.tencentcloudapi.com"

// Version is the DNSPod API version.
const Version = "2021-03-23"

// DefaultLine is DNSPod's default resolution line. Records of other lines
// (split horizon by ISP) are the user's and are never touched.
const DefaultLine = "默认"

// vendor tells apiclient how Tencent Cloud signals trouble: always HTTP
// 200, with Response.Error.Code "RequestLimitExceeded…" when throttled and
// "InternalError" when it has trouble.
var vendor = apiclient.Vendor{Name: vendorName, Classify: classify}

const vendorName = "DNSPod"

// envelope is every answer of Tencent Cloud API 3.0.
type envelope struct {
	Response struct {
		Error *struct {
			Code    string `json:"Code"`    // e.g. "AuthFailure.SecretIdNotFound"
			Message string `json:"Message"` // e.g. "The SecretId is not found, please ensure that your SecretId is correct."
		} `json:"Error"`
		RequestID string `json:"RequestId"`
	} `json:"Response"`
}

// decodeError returns the error in an answer, nil if there is none.
func decodeError(body []byte) apiclient.CodedError {
	var env envelope
	if json.Unmarshal(body, &env) != nil || env.Response.Error == nil {
		return nil
	}
	e := env.Response.Error
	return &APIError{Code: e.Code, Message: e.Message, RequestID: env.Response.RequestID}
}

func classify(_ *http.Request, status int, body []byte) apiclient.Verdict {
	return apiclient.CodedVerdict(vendorName, status, decodeError(body))
}

// call sends action with params to DNSPod and decodes the Response object
// into out.
func (p *Provider) call(ctx context.Context, action string, params, out any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return err
	}
	// Each attempt is signed afresh: the signature covers the time.
	resp, err := p.client.Send(ctx, func(int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, Endpoint, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Version", Version)
		req.Header.Set("X-TC-Language", "en-US")
		tclib.SignRequest(p.secretID, p.secretKey, "", req, action, string(body))
		return req, nil
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var res struct {
		Response json.RawMessage `json:"Response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || len(res.Response) == 0 {
		return fmt.Errorf("decoding DNSPod's answer to %s: not a Tencent Cloud API answer (%v)", action, err)
	}
	if out != nil {
		if err := json.Unmarshal(res.Response, out); err != nil {
			return fmt.Errorf("decoding DNSPod's answer to %s: %w", action, err)
		}
	}
	return nil
}

// hasCode reports whether err is an APIError with one of codes.
func hasCode(err error, codes ...string) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.Code == c {
			return true
		}
	}
	return false
}
