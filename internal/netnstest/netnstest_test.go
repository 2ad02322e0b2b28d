package netnstest

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/homederp/homederp/internal/testenv"
)

// TestRoutedPair builds client — router — server, with the router doing
// NAT, and checks that a Go client dialling from one namespace reaches a Go
// server in another and is seen with the router's address.
func TestRoutedPair(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "ip")
	testenv.NeedCommand(t, "nft")

	client := New(t, "hd-ddns-nt-c")
	router := New(t, "hd-ddns-nt-r")
	server := New(t, "hd-ddns-nt-s")
	Link(t, client, "eth0", router, "lan0")
	Link(t, router, "wan0", server, "eth0")
	client.AddAddr("eth0", "192.168.7.2/24")
	router.AddAddr("lan0", "192.168.7.1/24")
	router.AddAddr("wan0", "203.0.113.10/24")
	server.AddAddr("eth0", "203.0.113.1/24")
	client.IP("route", "add", "default", "via", "192.168.7.1")
	router.Sysctl("net.ipv4.ip_forward", "1")
	router.Nft(`table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat;
		oifname "wan0" masquerade
	}
}`)

	l := server.MustListen("tcp4", "203.0.113.1:0")
	seen := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		io.WriteString(c, "hello\n")
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dialer().DialContext(ctx, "tcp4", l.Addr().String())
	if err != nil {
		t.Fatalf("dial from %s: %v", client.Name, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), "hello"; got != want {
		t.Errorf("read: got %q, want %q", got, want)
	}
	if got, want := <-seen, "203.0.113.10"; got != want {
		t.Errorf("server saw client as %s, want the router's public %s", got, want)
	}

	// The test's own thread is still in the host namespace.
	if err := client.Do(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if out := client.Run("ip", "-br", "addr", "show", "eth0"); !strings.Contains(out, "192.168.7.2") {
		t.Errorf("ip netns exec in %s: got %q, want the client's address", client.Name, out)
	}
}
