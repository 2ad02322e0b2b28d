package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Check verifies the provider's token with GET /user/tokens/verify, which
// needs no permission and writes nothing, and, if hostname is not empty,
// that the token can see the zone holding hostname. The error says in
// plain words what to fix; the web UI shows it when the user saves a
// token.
func (p *Provider) Check(ctx context.Context, hostname string) error {
	token := p.lib.APIToken
	if token == "" {
		return errors.New("the API token is empty")
	}
	if strings.HasPrefix(strings.ToLower(token), "bearer ") {
		return errors.New("paste the token without the word \"Bearer\"")
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
		return &TokenError{"this Cloudflare API token is disabled; enable it under My Profile → API Tokens, or create a new one"}
	case "expired":
		return &TokenError{"this Cloudflare API token has expired; create a new one with the \"Edit zone DNS\" template"}
	default:
		return &TokenError{fmt.Sprintf("Cloudflare says this token's status is %q, not active", res.Status)}
	}
	if !res.NotBefore.IsZero() && time.Now().Before(res.NotBefore) {
		return &TokenError{fmt.Sprintf("this Cloudflare API token only becomes valid at %s", res.NotBefore.Format(time.RFC1123))}
	}
	if hostname == "" {
		return nil
	}
	_, err := p.ZoneFor(ctx, hostname)
	return err
}
