package webui

import (
	"strings"

	"github.com/homederp/homederp/appliance/config"
)

// keyPairFields are the two form fields of the providers whose credential
// is a key pair, named as their consoles name the halves.
var keyPairFields = map[string][2]string{
	config.ProviderTencentCloud: {"tencentcloud.secret_id", "tencentcloud.secret_key"},
	config.ProviderAliDNS:       {"alidns.access_key_id", "alidns.access_key_secret"},
}

// secretField is the form field next to which provider's credential
// errors are shown.
func secretField(provider string) string {
	if f, ok := keyPairFields[provider]; ok {
		return f[1]
	}
	return "secret"
}

// typedSecret is the credential the user typed for provider, as the
// store keeps it ("" if none was typed): the secret field, or for a key
// pair both halves, which are only saved together.
func typedSecret(t *tr, f map[string][]string, provider string, errs fieldErrs) string {
	fields, ok := keyPairFields[provider]
	if !ok {
		return strings.TrimSpace(first(f["secret"]))
	}
	k := config.KeyPair{ID: strings.TrimSpace(first(f[fields[0]])), Secret: strings.TrimSpace(first(f[fields[1]]))}
	switch {
	case k.ID == "" && k.Secret == "":
		return ""
	case k.ID == "" || k.Secret == "":
		errs.add(fields[1], t.S("setup.err.both_halves"))
		return ""
	}
	return k.Encode()
}

// missingSecret asks for provider's credential.
func missingSecret(t *tr, provider string) string {
	switch provider {
	case config.ProviderCloudflare:
		return t.S("setup.err.missing_cloudflare")
	case config.ProviderTencentCloud:
		return t.S("setup.err.missing_dnspod")
	case config.ProviderAliDNS:
		return t.S("setup.err.missing_alidns")
	}
	return t.S("setup.err.missing_tsig")
}

// scrubKey removes a DNS credential (for a key pair: its secret half)
// from a message, in case a provider echoes it.
func scrubKey(msg, secret string) string {
	if k := config.ParseKeyPair(secret); strings.Contains(secret, "\n") && k.Secret != "" {
		secret = k.Secret
	}
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "[the secret]")
}
