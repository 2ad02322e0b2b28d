package peerrelay

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tailscale/hujson"
)

// TestGrant reads the grant back as a policy file would hold it: a member
// among others, with the trailing comma HuJSON allows.
func TestGrant(t *testing.T) {
	b := Grant("tag:homederp")
	const want = `"grants": [
  {
    "src": ["*"],
    "dst": ["tag:homederp"],
    "app": {"tailscale.com/cap/relay": []}
  }
],
`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("Grant (-want +got):\n%s", diff)
	}
	doc := append([]byte("{\n  \"acls\": [],\n"), b...)
	doc = append(doc, '}')
	std, err := hujson.Standardize(doc)
	if err != nil {
		t.Fatalf("the policy with the grant is not HuJSON: %v\n%s", err, doc)
	}
	var policy struct {
		Grants []struct {
			Src, Dst []string
			App      map[string][]json.RawMessage
		}
	}
	if err := json.Unmarshal(std, &policy); err != nil {
		t.Fatal(err)
	}
	if len(policy.Grants) != 1 {
		t.Fatalf("grants: got %d, want 1\n%s", len(policy.Grants), b)
	}
	g := policy.Grants[0]
	if diff := cmp.Diff([]string{"*"}, g.Src); diff != "" {
		t.Errorf("src (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"tag:homederp"}, g.Dst); diff != "" {
		t.Errorf("dst (-want +got):\n%s", diff)
	}
	if caps, ok := g.App["tailscale.com/cap/relay"]; !ok || len(caps) != 0 || len(g.App) != 1 {
		t.Errorf("app: got %v, want exactly tailscale.com/cap/relay with no values", g.App)
	}
}

func TestPolicyName(t *testing.T) {
	v4, v6 := netip.MustParseAddr("100.64.0.7"), netip.MustParseAddr("fd7a:115c:a1e0::7")
	for _, tt := range []struct {
		name  string
		tags  []string
		addrs []netip.Addr
		want  string
	}{
		{"tagged", []string{"tag:homederp", "tag:relay"}, []netip.Addr{v4}, "tag:homederp"},
		{"user's node", nil, []netip.Addr{v6, v4}, "100.64.0.7"},
		{"IPv6 only", nil, []netip.Addr{v6}, "fd7a:115c:a1e0::7"},
		{"not logged in", nil, nil, ""},
	} {
		if got := PolicyName(tt.tags, tt.addrs); got != tt.want {
			t.Errorf("%s: PolicyName(%v, %v): got %q, want %q", tt.name, tt.tags, tt.addrs, got, tt.want)
		}
	}
}
