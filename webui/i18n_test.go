package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/ddns"
	"github.com/homederp/homederp/ddns/alidns"
	"github.com/homederp/homederp/ddns/apiclient"
	"github.com/homederp/homederp/ddns/cloudflare"
	"github.com/homederp/homederp/ddns/records"
	"github.com/homederp/homederp/ddns/rfc2136"
	"github.com/homederp/homederp/ddns/tencentcloud"
	"github.com/homederp/homederp/internal/usermsg"
	"github.com/homederp/homederp/relay"
)

var htmlLangRx = regexp.MustCompile(`<html lang="([^"]+)">`)

func htmlLang(body string) string {
	if m := htmlLangRx.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// TestLanguageChoice: the switch's cookie first, then the browser's
// Accept-Language, then English; the login page already speaks it.
func TestLanguageChoice(t *testing.T) {
	b := newBox(t, nil)
	for _, tt := range []struct {
		accept, cookie string
		want           string // <html lang>
		word           string // the login button
	}{
		{"", "", "en", "Log in"},
		{"en-US,en;q=0.9", "", "en", "Log in"},
		{"zh-CN,zh;q=0.9,en;q=0.8", "", "zh-CN", "登录"},
		{"zh", "", "zh-CN", "登录"},
		{"zh-TW,zh;q=0.9", "", "zh-CN", "登录"}, // Traditional reads Simplified better than English
		{"de-DE,de;q=0.9", "", "en", "Log in"},
		{"fr, zh-CN;q=0.5", "", "zh-CN", "登录"},
		{"zh-CN", "en", "en", "Log in"},
		{"en", "zh-CN", "zh-CN", "登录"},
		{"zh-CN", "klingon", "zh-CN", "登录"}, // a cookie of no language is ignored
	} {
		req, err := http.NewRequest("GET", b.srv.URL+"/login", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.accept != "" {
			req.Header.Set("Accept-Language", tt.accept)
		}
		if tt.cookie != "" {
			req.AddCookie(&http.Cookie{Name: langCookie, Value: tt.cookie})
		}
		resp, body := b.do(req)
		mustStatus(t, "GET /login", resp, body, http.StatusOK)
		if got := htmlLang(body); got != tt.want {
			t.Errorf("Accept-Language %q, cookie %q: got <html lang=%q>, want %q", tt.accept, tt.cookie, got, tt.want)
		}
		if !strings.Contains(body, "<button>"+tt.word+"</button>") {
			t.Errorf("Accept-Language %q, cookie %q: no %q button", tt.accept, tt.cookie, tt.word)
		}
	}
}

// TestLanguageSwitch: the switch is on every page, before a login too,
// and comes back to the page it was on; the choice is remembered.
func TestLanguageSwitch(t *testing.T) {
	b := newBox(t, nil).configured()
	_, body := b.get("/login?next=%2Fsetup")
	contains(t, "English login page", body, `<a href="/lang?to=zh-CN&amp;next=%2Flogin%3Fnext%3D%252Fsetup" lang="zh-CN" hreflang="zh-CN">中文</a>`)

	resp, body := b.get("/lang?to=zh-CN&next=%2Flogin%3Fnext%3D%252Fsetup")
	mustStatus(t, "switching", resp, body, http.StatusSeeOther)
	if got, want := resp.Header.Get("Location"), "/login?next=%2Fsetup"; got != want {
		t.Errorf("switch: went to %q, want %q", got, want)
	}
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == langCookie {
			c = k
		}
	}
	if c == nil || c.Value != "zh-CN" || c.Path != "/" || c.MaxAge < 30*24*3600 || !c.HttpOnly {
		t.Errorf("switch cookie: got %+v, want zh-CN for / for a long time", c)
	}
	_, body = b.get("/login")
	if htmlLang(body) != "zh-CN" || !strings.Contains(body, "gokrazy 密码") {
		t.Errorf("login page after the switch is not in Chinese:\n%s", body)
	}
	b.login()
	for _, path := range []string{"/", "/setup", "/derpmap"} {
		_, body := b.get(path)
		if htmlLang(body) != "zh-CN" {
			t.Errorf("GET %s after the switch: <html lang=%q>", path, htmlLang(body))
		}
		contains(t, path, body, `<a href="/lang?to=en&amp;next=`+url.QueryEscape(path)+`" lang="en" hreflang="en">English</a>`)
	}

	// Back to English; the switch goes only to a page of this UI.
	resp, _ = b.get("/lang?to=en&next=https%3A%2F%2Fevil.example%2F")
	if got := resp.Header.Get("Location"); got != "/" {
		t.Errorf("switch with a foreign next: went to %q, want /", got)
	}
	_, body = b.get("/")
	if htmlLang(body) != "en" {
		t.Errorf("status page after switching back: <html lang=%q>", htmlLang(body))
	}
}

// TestChineseSetup: a form's errors, the saved message and the JSON
// answer speak the user's language, config validation's included; what
// the user typed stays as typed.
func TestChineseSetup(t *testing.T) {
	b := newBox(t, nil).configured().login()
	b.get("/lang?to=zh-CN&next=/setup")

	resp, body := b.submit("/setup", "/setup/region", url.Values{"region.id": {"42"}, "region.code": {"Home Lab"}, "region.name": {"家"}, "region.node_name": {"900a"}})
	mustStatus(t, "bad region", resp, body, http.StatusBadRequest)
	contains(t, "bad region", body,
		"未保存：请查看",
		"42 不在 900–999 之间",
		"&#34;Home Lab&#34; 应由最多 32 个小写字母、数字或连字符组成",
		`value="家"`)
	if strings.Contains(body, "is outside 900–999") {
		t.Errorf("bad region: English validation message on a Chinese page")
	}

	resp, body = b.submit("/setup", "/setup/region", url.Values{"region.id": {"x"}, "region.code": {"lab"}, "region.name": {"Lab"}, "region.node_name": {"900a"}})
	mustStatus(t, "region not a number", resp, body, http.StatusBadRequest)
	contains(t, "region not a number", body, "&#34;x&#34; 不是整数", `value="x"`)

	resp, body = b.submit("/setup", "/setup/region", url.Values{"region.id": {"942"}, "region.code": {"lab"}, "region.name": {"Lab"}, "region.node_name": {"942a"}})
	mustStatus(t, "good region", resp, body, http.StatusSeeOther)
	_, body = b.get("/setup")
	contains(t, "after saving", body, "已保存区域 942（lab）")

	// Another step's error names the step in Chinese.
	if err := b.store.Update(func(c *config.Config) error { c.Relay.STUNPort = 3478; return nil }); err != nil {
		t.Fatal(err)
	}
	resp, body = b.submit("/setup", "/setup/peerrelay", url.Values{"peer_relay.enabled": {"on"}, "peer_relay.port": {"3478"}})
	mustStatus(t, "peer relay on the STUN port", resp, body, http.StatusBadRequest)
	contains(t, "peer relay on the STUN port", body, "UDP 3478 是 STUN 端口")

	req, _ := http.NewRequest("GET", b.srv.URL+"/", nil)
	req.Header.Set("Accept", "application/json")
	resp, body = b.do(req)
	mustStatus(t, "status JSON", resp, body, http.StatusOK)
	var st struct{ Warnings []string }
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Warnings) == 0 || !strings.Contains(strings.Join(st.Warnings, "\n"), "客户端验证已关闭") {
		t.Errorf("status JSON warnings: got %q, want them in Chinese", st.Warnings)
	}
}

// TestProviderSentences: a DNS provider's refusal is one sentence in
// each language, the English one the provider package's own.
func TestProviderSentences(t *testing.T) {
	en, zh := english(t), chinese(t)
	var errs []error
	for _, code := range []string{"AuthFailure.SecretIdNotFound", "AuthFailure.SignatureFailure", "AuthFailure.SignatureExpire",
		"AuthFailure.UnauthorizedOperation", "InvalidParameterValue.DomainNotExists", "FailedOperation.DomainIsLocked",
		"LimitExceeded.RecordTtlLimit", "InvalidParameter.DomainRecordExist", "RequestLimitExceeded", "InternalError", "Whatever"} {
		errs = append(errs, &tencentcloud.APIError{Code: code, Message: "msg", RequestID: "r-1", Domain: "example.com"})
	}
	for _, code := range []string{"InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive", "SignatureDoesNotMatch",
		"InvalidTimeStamp.Expired", "Forbidden.RAM", "InvalidDomainName.NoExist", "DomainRecordLocked", "QuotaExceeded.TTL",
		"DomainRecordDuplicate", "DomainRecordConflict", "Throttling.User", "ServiceUnavailable", "Whatever"} {
		errs = append(errs, &alidns.APIError{Status: 400, Code: code, Message: "msg", Domain: "example.com"})
	}
	for _, st := range []int{429, 401, 403, 404, 502, 400} {
		errs = append(errs, &cloudflare.APIError{Status: st, Zone: "example.com"})
	}
	for _, code := range []int{6003, 9021, 81053, 81058} {
		errs = append(errs, &cloudflare.APIError{Status: 400, Errors: []cloudflare.ErrorItem{{Code: code, Message: "msg"}}, Zone: "example.com"})
	}
	errs = append(errs,
		&apiclient.RateLimitError{Vendor: "DNSPod", RetryAfter: 90 * time.Second, Budget: 30},
		&apiclient.RateLimitError{Vendor: "AliDNS", RetryAfter: time.Minute, Cause: errors.New("throttled")},
		&apiclient.TroubleError{Vendor: "AliDNS", Status: 502},
		&apiclient.GarbageError{Vendor: "DNSPod", Status: 200, Body: []byte("<html>portal</html>")},
		&records.NoZoneError{Vendor: "DNSPod", Host: "derp.example.com"},
	)
	// Sentences the RFC 2136 and Cloudflare providers make themselves,
	// before any answer (nothing listens on loopback's discard port).
	ctx := context.Background()
	tsig := &rfc2136.Provider{Server: "127.0.0.1:9", Zone: "example.com", KeyName: "box", Secret: "c2VjcmV0"}
	_, outside := tsig.ZoneFor(ctx, "derp.example.net")
	unreachable := tsig.CheckKey(ctx, "derp.example.com")
	errs = append(errs, outside, unreachable,
		cloudflare.New("", apiclient.Options{}).Check(ctx, ""),
		cloudflare.New("Bearer abc", apiclient.Options{}).Check(ctx, ""))
	seen := map[string]bool{}
	for _, err := range errs {
		wrapped := fmt.Errorf("listing the zones: %w", ddns.ClassifyCheck(err))
		if got, want := providerProblem(en, wrapped), err.Error(); got != want {
			t.Errorf("%#v in English:\n got %q\nwant %q", err, got, want)
		}
		got := providerProblem(zh, wrapped)
		if got == err.Error() || !regexp.MustCompile(`\p{Han}`).MatchString(got) {
			t.Errorf("%#v in Chinese: got %q", err, got)
		}
		id, _ := err.(userMessage).UserMessage()
		seen[id] = true
	}
	if len(seen) != 43 {
		t.Errorf("the table reaches %d of the providers' messages; it should reach every one", len(seen))
	}
	// A check failure says what to fix first, in the user's language.
	msg := credentialProblem(zh, ddns.ClassifyCheck(&tencentcloud.APIError{Code: "AuthFailure.SecretIdNotFound", Message: "SecretId not found"}), "AKIDsecret")
	if !strings.HasPrefix(msg, "DNS 服务商不接受这个凭据：腾讯云找不到这个 SecretId") {
		t.Errorf("credential problem in Chinese: got %q", msg)
	}
}

// chinese is the Simplified Chinese translator.
func chinese(t *testing.T) *tr {
	t.Helper()
	langs, _, _, err := loadLocales()
	if err != nil {
		t.Fatal(err)
	}
	return langs[1].tr
}

// TestChineseDDNSSentences: the ddns service's warnings and its last
// error, which may join several problems and wrap a provider's refusal,
// are translated sentence by sentence; what has no sentence stays.
func TestChineseDDNSSentences(t *testing.T) {
	en, zh := catalogue(t, "en"), chinese(t)
	say := func(id string, args map[string]any) (string, usermsg.Msg) { return usermsg.Say(id, en[id].Other, args) }
	hard, hardMsg := say("detect.hard_nat", nil)
	moving, movingMsg := say("dns.address_moving", map[string]any{"Family": "IPv4", "First": "203.0.113.9", "Then": "203.0.113.10"})
	noV6, noV6Msg := say("detect.no_ipv6", nil)
	family, familyMsg := say("dns.family_problem", map[string]any{"Family": "IPv6", "Problem": noV6})
	refused := &tencentcloud.APIError{Code: "AuthFailure.UnauthorizedOperation", Message: "denied", Domain: "example.com"}
	id, args := refused.UserMessage()
	ds := &ddns.Status{
		Enabled:   true,
		Warnings:  []string{hard, "A warning nobody gave a sentence."},
		LastError: strings.Join([]string{moving, family, "writing the A record: " + refused.Error()}, " "),
		Msgs:      map[string]usermsg.Msg{hard: hardMsg, moving: movingMsg, noV6: noV6Msg, family: familyMsg, refused.Error(): {ID: id, Args: args}},
	}
	c := config.Default()
	c.Hostname = "derp.example.com"
	ws := strings.Join(warnings(zh, c, nil, ds, tailnetView{}, dnsView{}, time.Now()), "\n")
	for _, want := range []string{
		"你的 NAT 对每个目的地分配不同的端口",
		"A warning nobody gave a sentence.",
		"动态域名：IPv4：两次检查之间地址变了（203.0.113.9，然后是 203.0.113.10）",
		"IPv6：本机没有全局 IPv6 地址。",
		"writing the A record: 这个 API 密钥无权执行此操作",
	} {
		if !strings.Contains(ws, want) {
			t.Errorf("warnings lack %q:\n%s", want, ws)
		}
	}
	if strings.Contains(ws, "has no global IPv6") || strings.Contains(ws, "may not do this") {
		t.Errorf("English left in translated sentences:\n%s", ws)
	}
	// English pages show the English as it is.
	if got := english(t).sentences(ds.Msgs, ds.LastError); got != ds.LastError {
		t.Errorf("English: got %q, want %q", got, ds.LastError)
	}
}

// TestChineseRelaySentences: the relay's certificate and verify-clients
// problems, which nest sentences and carry the CA's own words, are
// translated sentence by sentence on the status page and in warnings.
func TestChineseRelaySentences(t *testing.T) {
	en, zh := catalogue(t, "en"), chinese(t)
	sentence := func(id string, args map[string]any) (string, usermsg.Msg) { return usermsg.Say(id, en[id].Other, args) }
	fallback := usermsg.Errorf("relaystate.acme_fallback", en["relaystate.acme_fallback"].Other, nil)
	cert, certMsg := sentence("relaystate.acme_attempt_failed", map[string]any{"Attempt": 2, "Err": "urn:ietf:params:acme:error:serverInternal", "Next": "2026-12-04 05:00:00 UTC", "Fallback": fallback})
	why := usermsg.Errorf("relaystate.ts_no_answer", en["relaystate.ts_no_answer"].Other, nil)
	verify, verifyMsg := sentence("relaystate.verify_unreachable", map[string]any{"Why": why})
	rs := &relay.Status{CertError: cert, VerifyProblem: verify, Msgs: map[string]usermsg.Msg{cert: certMsg, verify: verifyMsg}}
	c := config.Default()
	c.Hostname = "derp.example.com"
	c.Relay.VerifyClients = true
	ws := strings.Join(warnings(zh, c, rs, nil, tailnetView{}, dnsView{}, time.Now()), "\n")
	for _, want := range []string{
		"还没有受信任的证书：第 2 次尝试失败：urn:ietf:params:acme:error:serverInternal；下次尝试在 2026-12-04 05:00:00 UTC；在此期间使用自签名证书",
		"客户端验证已开启，但本机的 tailscaled 没有响应",
	} {
		if !strings.Contains(ws, want) {
			t.Errorf("warnings lack %q:\n%s", want, ws)
		}
	}
	if strings.Contains(ws, "meanwhile") || strings.Contains(ws, "not answering") {
		t.Errorf("English left in translated sentences:\n%s", ws)
	}
	if got := english(t).sentences(rs.Msgs, rs.CertError); got != cert {
		t.Errorf("English: got %q, want %q", got, cert)
	}
}
