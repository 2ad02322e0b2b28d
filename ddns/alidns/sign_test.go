package alidns

import (
	"net/http"
	"testing"
	"time"
)

// TestSignVector signs the worked example of Alibaba Cloud's "V3 request
// structure and signature" documentation (ECS RunInstances, 2023-10-26)
// and compares with the documented Authorization header.
func TestSignVector(t *testing.T) {
	req, err := http.NewRequest("POST", "https://ecs.cn-shanghai.aliyuncs.com/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2023, 10, 26, 10, 22, 32, 0, time.UTC)
	sign(req, nil, "RunInstances", "2014-05-26", "YourAccessKeyId", "YourAccessKeySecret", now, "3156853299f313e23d1673dc12e1703d")
	const want = "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
	if got := req.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization:\ngot  %s\nwant %s", got, want)
	}
}
