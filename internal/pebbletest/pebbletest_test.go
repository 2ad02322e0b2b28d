package pebbletest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"testing"
)

func TestDirectoryAndOutage(t *testing.T) {
	// Nothing is validated here, so the DNS server is never asked.
	s := Start(t, Options{DNSServer: "127.0.0.1:1", Logf: t.Logf})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.APIRoots}}}
	defer client.CloseIdleConnections()

	resp, err := client.Get(s.DirectoryURL)
	if err != nil {
		t.Fatalf("GET directory trusting APIRoots: %v", err)
	}
	var dir map[string]any
	err = json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || dir["newOrder"] == nil {
		t.Errorf("directory: status %d, %v, %v; want 200 with newOrder", resp.StatusCode, dir, err)
	}

	if _, err := http.Get(s.DirectoryURL); err == nil {
		t.Error("GET directory with the system roots succeeded; want a certificate error")
	}

	s.SetDown(true)
	before := s.Requests()
	resp, err = client.Get(s.DirectoryURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("while down: status %d, type %q; want 503 with an ACME problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := s.Requests() - before; got != 1 {
		t.Errorf("Requests counted %d while down, want 1", got)
	}
	if s.Root == nil || !s.Root.IsCA {
		t.Errorf("Root: %v, want Pebble's issuing root CA", s.Root)
	}
}

func TestIssue(t *testing.T) {
	s := Start(t, Options{AlwaysValid: true, Logf: t.Logf})
	chainPEM, keyPEM := s.Issue(t, "localhost")
	pair, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.RootPEM()) {
		t.Fatal("RootPEM holds no certificate")
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("the issued certificate does not chain to RootPEM for localhost: %v", err)
	}
}
