package webui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/homederp/homederp/appliance/config"
)

// TestSetupKeyPairs: DNSPod and AliDNS keys have two halves, pasted into
// two fields, checked together, saved together as one secret, and never
// shown again.
func TestSetupKeyPairs(t *testing.T) {
	var got []string
	check := func(ctx context.Context, c config.Config, secret string) error {
		got = append(got, c.DDNS.Provider+" "+secret)
		k := config.ParseKeyPair(secret)
		if k.Secret != "GOOD-secret-half" {
			return errors.New("Tencent Cloud rejected the request's signature: the SecretKey GOOD-but-wrong does not belong to this SecretId " + k.ID)
		}
		return nil
	}
	b := newBox(t, func(o *Options) { o.CheckDNSCredential = check }).login()
	for _, tt := range []struct {
		provider, secret, idField, secretField, saved string
	}{
		{config.ProviderTencentCloud, config.SecretTencentCloud, "tencentcloud.secret_id", "tencentcloud.secret_key", "A Tencent Cloud API key is saved"},
		{config.ProviderAliDNS, config.SecretAliDNS, "alidns.access_key_id", "alidns.access_key_secret", "An Alibaba Cloud AccessKey is saved"},
	} {
		t.Run(tt.provider, func(t *testing.T) {
			form := func(id, secret string) url.Values {
				return url.Values{"hostname": {"derp.example.com"}, "ddns.provider": {tt.provider}, "ddns.ipv4": {"on"},
					"ddns.interval": {"2m"}, tt.idField: {id}, tt.secretField: {secret}}
			}
			n := len(got)
			resp, body := b.submit("/setup", "/setup/name", form("KEY-ID-1", ""))
			mustStatus(t, "one half", resp, body, http.StatusBadRequest)
			contains(t, "one half", body, "Paste both halves of the key")
			if len(got) != n {
				t.Errorf("half a key was checked: %q", got[n:])
			}

			resp, body = b.submit("/setup", "/setup/name", form("KEY-ID-1", "GOOD-but-wrong"))
			mustStatus(t, "wrong key", resp, body, http.StatusBadRequest)
			contains(t, "wrong key", body, "The credential check failed", "does not belong to this SecretId KEY-ID-1", "[the secret]")
			if strings.Contains(body, "GOOD-but-wrong") || b.store.HasSecret(tt.secret) {
				t.Error("a refused key was shown back or saved")
			}

			resp, body = b.submit("/setup", "/setup/name", form(" KEY-ID-1 ", "GOOD-secret-half"))
			mustStatus(t, "good key", resp, body, http.StatusSeeOther)
			if last := got[len(got)-1]; last != tt.provider+" KEY-ID-1\nGOOD-secret-half" {
				t.Errorf("checked: got %q, want both halves", last)
			}
			if v, _ := b.store.Secret(tt.secret); config.ParseKeyPair(v) != (config.KeyPair{ID: "KEY-ID-1", Secret: "GOOD-secret-half"}) {
				t.Errorf("saved secret: got %q", v)
			}
			if c := b.store.Config(); c.DDNS.Provider != tt.provider {
				t.Errorf("saved provider: got %q, want %q", c.DDNS.Provider, tt.provider)
			}
			_, body = b.get("/setup")
			contains(t, "setup after saving", body, tt.saved, "TTL 600", "up to 10 minutes")
			if strings.Contains(body, "GOOD-secret-half") || strings.Contains(body, "KEY-ID-1") {
				t.Error("the saved key is sent back")
			}

			n = len(got)
			resp, body = b.submit("/setup", "/setup/name", form("", ""))
			mustStatus(t, "save again", resp, body, http.StatusSeeOther)
			if len(got) != n || !b.store.HasSecret(tt.secret) {
				t.Error("saving with empty key fields re-checked or dropped the saved key")
			}
		})
	}
}
