package webui

import (
	"bytes"
	"crypto/x509"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/relay"
)

// selfSignedPEM makes a certificate and key for host with the relay's own
// generator and returns them as PEM.
func selfSignedPEM(t *testing.T, host string) (crt, key []byte) {
	t.Helper()
	crt, key, err := relay.NewSelfSignedPEM(host, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return crt, key
}

func TestInstallManualCert(t *testing.T) {
	certDir := t.TempDir()
	b := newBox(t, func(o *Options) {
		o.CertDir = certDir
		o.InstallManualCert = func(c config.Config, crtPEM, keyPEM []byte) (*x509.Certificate, error) {
			return relay.InstallManualPair(certDir, c.Hostname, crtPEM, keyPEM, time.Now())
		}
	}).configured().login()
	crt, key := selfSignedPEM(t, "derp.example.com")
	otherCrt, otherKey := selfSignedPEM(t, "other.example.com")
	crtPath, keyPath := relay.ManualCertPaths(certDir, "derp.example.com")

	resp, body := b.submit("/setup", "/setup/certfiles", url.Values{"cert.pem": {string(crt)}, "cert.key": {string(key)}})
	mustStatus(t, "good pair", resp, body, http.StatusSeeOther)
	if got, _ := os.ReadFile(keyPath); !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(key)) {
		t.Errorf("stored key: got %q", got)
	}
	_, body = b.get("/setup")
	contains(t, "setup after install", body, "Installed the certificate for derp.example.com", "Choose Manual above")

	for _, tt := range []struct {
		name     string
		crt, key []byte
		want     string
	}{
		{"certificate for another name", otherCrt, otherKey, "not for derp.example.com"},
		{"key of another certificate", crt, otherKey, "not a usable certificate and key pair"},
		{"no key", crt, nil, "Paste the private key"},
		{"no certificate", nil, key, "Paste the certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := b.submit("/setup", "/setup/certfiles", url.Values{"cert.pem": {string(tt.crt)}, "cert.key": {string(tt.key)}})
			mustStatus(t, tt.name, resp, body, http.StatusBadRequest)
			contains(t, tt.name, body, tt.want)
			for _, k := range [][]byte{key, otherKey} {
				if strings.Contains(body, string(bytes.TrimSpace(k))[40:80]) {
					t.Error("the page shows a private key back")
				}
			}
			if got, _ := os.ReadFile(crtPath); !bytes.Equal(got, crt) && !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(crt)) {
				t.Error("a refused pair replaced the stored certificate")
			}
		})
	}

	// Without the hook the form is not offered.
	nb := newBox(t, nil).configured().login()
	_, body = nb.get("/setup")
	if strings.Contains(body, "/setup/certfiles") {
		t.Error("setup offers the certificate form without a way to install it")
	}
}
