package cloudflare

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/homederp/homederp/internal/usermsg"
)

// Check verifies the provider's token with GET /user/tokens/verify, which
// needs no permission and writes nothing, and, if hostname is not empty,
// that the token can see the zone holding hostname. The error says in
// plain words what to fix; the web UI shows it when the user saves a
// token.
func (p *Provider) Check(ctx context.Context, hostname string) error {
	token := p.lib.APIToken
	if token == "" {
		return usermsg.Errorf("provider.cloudflare.empty", "the API token is empty", nil)
	}
	if strings.HasPrefix(strings.ToLower(token), "bearer ") {
		return usermsg.Errorf("provider.cloudflare.bearer", `paste the token without the word "Bearer"`, nil)
	}
	var res struct {
		ID        string    `json:"id"`
		Status    string    `json:"status"` // "active", "disabled" or "expired"
		NotBefore time.Time `json:"not_before"`
		ExpiresOn time.Time `json:"expires_on"`
	}
	if err := p.api(ctx, http.MethodGet, "/user/tokens/verify", &res); err != nil {
		return fmt.Errorf("checking the Cloudflare token: %w", err)
	}
	switch res.Status {
	case "active":
	case "disabled":
		return &TokenError{usermsg.Errorf("provider.cloudflare.disabled", "this Cloudflare API token is disabled; enable it under My Profile → API Tokens, or create a new one", nil)}
	case "expired":
		return &TokenError{usermsg.Errorf("provider.cloudflare.expired", `this Cloudflare API token has expired; create a new one with the "Edit zone DNS" template`, nil)}
	default:
		return &TokenError{usermsg.Errorf("provider.cloudflare.status", `Cloudflare says this token's status is {{printf "%q" .Status}}, not active`, map[string]any{"Status": res.Status})}
	}
	if !res.NotBefore.IsZero() && time.Now().Before(res.NotBefore) {
		return &TokenError{usermsg.Errorf("provider.cloudflare.not_yet", "this Cloudflare API token only becomes valid at {{.Time}}", map[string]any{"Time": res.NotBefore.Format(time.RFC1123)})}
	}
	if hostname == "" {
		return nil
	}
	_, err := p.ZoneFor(ctx, hostname)
	return err
}
