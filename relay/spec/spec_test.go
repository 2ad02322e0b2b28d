package spec

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

func TestPin(t *testing.T) {
	der := []byte("a certificate")
	got := Pin(der)
	if want := fmt.Sprintf("sha256-raw:%x", sha256.Sum256(der)); got != want {
		t.Errorf("Pin: got %q, want %q", got, want)
	}
	if err := CheckPin(got); err != nil {
		t.Errorf("CheckPin(Pin(…)): %v", err)
	}
	hex := strings.TrimPrefix(got, "sha256-raw:")
	for _, tt := range []struct{ in, want string }{
		{hex, "not a certificate pin"},
		{"sha256-raw:" + hex[:63], "64 hex digits"},
		{"sha256-raw:" + hex + "0", "64 hex digits"},
		{"sha256-raw:" + strings.Repeat("g", 64), "64 hex digits"},
		{"sha256-raw:" + strings.ToUpper(hex), "uppercase"},
		{"", "not a certificate pin"},
	} {
		if err := CheckPin(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckPin(%q): got %v, want an error about %q", tt.in, err, tt.want)
		}
	}
	if !IsPin(got) || IsPin("derp.example.com") {
		t.Error("IsPin tells pins from certificate names wrongly")
	}
}

func TestParseMeshWith(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want MeshWith
	}{
		{"derp2.example.com", MeshWith{Host: "derp2.example.com", Name: "derp2.example.com", Port: 443}},
		{"derp2.example.com:12345", MeshWith{Host: "derp2.example.com:12345", Name: "derp2.example.com", Port: 12345}},
		{"derp2.example.com:12345/192.168.1.20", MeshWith{Host: "derp2.example.com:12345", Name: "derp2.example.com", Port: 12345, DialHost: "192.168.1.20"}},
		{"[2001:db8::2]:12345/[2001:db8::3]", MeshWith{Host: "[2001:db8::2]:12345", Name: "2001:db8::2", Port: 12345, DialHost: "[2001:db8::3]"}},
		{"[2001:db8::2]", MeshWith{Host: "[2001:db8::2]", Name: "2001:db8::2", Port: 443}},
		{"192.0.2.7:1", MeshWith{Host: "192.0.2.7:1", Name: "192.0.2.7", Port: 1}},
	} {
		got, err := ParseMeshWith(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseMeshWith(%q): got %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"", "host[:port]"},
		{" derp2.example.com", "host[:port]"},
		{"a.example.com b.example.com", "host[:port]"},
		{"a.example.com,b.example.com", "host[:port]"},
		{"a/b/c", "host[:port]"},
		{"derp2.example.com/", "host[:port]"},
		{"derp2.example.com:99999", "not a port number"},
		{"derp2.example.com:0", "not a port number"},
		{"2001:db8::1", "brackets"},
		{"derp2.example.com:1/10.0.0.1:5", "takes no port"},
		{"-bad-.example.com", "host[:port]"},
		{":12345", "no host name"},
	} {
		if _, err := ParseMeshWith(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseMeshWith(%q): got %v, want an error about %q", tt.in, err, tt.want)
		}
	}
}

func TestCheckVerifyURL(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"https://headscale.example.com/verify", true},
		{"http://127.0.0.1:8080/verify", true},
		{"ftp://headscale.example.com/verify", false},
		{"https:///verify", false},
		{"headscale.example.com/verify", false},
		{"", false},
	} {
		if err := CheckVerifyURL(tt.in); (err == nil) != tt.ok {
			t.Errorf("CheckVerifyURL(%q): got %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}
