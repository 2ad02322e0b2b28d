package alidnstest

import (
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSignatureVector checks the fake's V3 verification against the
// worked example of Alibaba Cloud's "V3 request structure and signature"
// documentation (ECS RunInstances, 2023-10-26), so that the fake checks
// what Alibaba Cloud checks and not merely what homederp's signer does.
func TestSignatureVector(t *testing.T) {
	r, err := http.NewRequest("POST", "https://ecs.cn-shanghai.aliyuncs.com/?RegionId=cn-shanghai&ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"x-acs-action": "RunInstances", "x-acs-version": "2014-05-26", "x-acs-date": "2023-10-26T10:22:32Z",
		"x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
		"x-acs-content-sha256":  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	} {
		r.Header.Set(k, v)
	}
	const auth = "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
	a, ok := parseAuth(auth)
	if !ok {
		t.Fatalf("parseAuth(%q) failed", auth)
	}
	if got := expectedSignature(r, a, "YourAccessKeySecret"); got != a.signature {
		t.Errorf("signature: got %s, want %s (the documented one)", got, a.signature)
	}
	if got := rfc3986("a b*c~d/é"); got != "a%20b%2Ac~d%2F%C3%A9" {
		t.Errorf("rfc3986: got %s", got)
	}
}

// TestDNSSide: the DNS side serves the default line's records.
func TestDNSSide(t *testing.T) {
	s := New(t, Options{})
	s.AddDomain("example.com")
	s.AddRecord("example.com", "derp", "AAAA", "2001:db8::9", 600)
	s.AddRecordOnLine("example.com", "derp", "AAAA", "2001:db8::77", 600, "telecom")
	addr := s.StartDNS(t, DNSOptions{})
	m := new(dns.Msg)
	m.SetQuestion("derp.example.com.", dns.TypeAAAA)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8::9" {
		t.Errorf("derp AAAA: got %v, want only the default line's 2001:db8::9", r.Answer)
	}
}
