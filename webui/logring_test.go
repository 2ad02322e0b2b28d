package webui

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLogRing(t *testing.T) {
	l := NewLogRing(3)
	if got := l.Lines(); len(got) != 0 {
		t.Errorf("empty ring: got %v", got)
	}
	texts := func() []string {
		var s []string
		for _, ln := range l.Lines() {
			s = append(s, ln.Text)
		}
		return s
	}
	l.Write([]byte("one\ntw"))
	l.Write([]byte("o\nthree\n"))
	if got, want := strings.Join(texts(), "|"), "one|two|three"; got != want {
		t.Errorf("lines: got %q, want %q", got, want)
	}
	l.Logf("four %d", 4)
	l.Write([]byte("five\nsix\n"))
	if got, want := strings.Join(texts(), "|"), "four 4|five|six"; got != want {
		t.Errorf("after wrapping: got %q, want %q", got, want)
	}
	l.Write([]byte(strings.Repeat("é", maxLogLine) + "\n"))
	last := l.Lines()[2].Text
	if len(last) > maxLogLine || !strings.HasPrefix(last, "éé") || strings.ContainsRune(last, '\uFFFD') {
		t.Errorf("long line: %d bytes, %q…", len(last), last[:10])
	}
	l.Write([]byte("bad \xff byte\n"))
	if got := l.Lines()[2].Text; got != "bad ? byte" {
		t.Errorf("invalid UTF-8: got %q", got)
	}
	// An endless line without a newline stays bounded.
	for i := 0; i < 100; i++ {
		l.Write([]byte(strings.Repeat("x", 1000)))
	}
	if len(l.partial) > maxLogLine {
		t.Errorf("partial line grew to %d bytes", len(l.partial))
	}
}

// TestLogRingCatchesPackageLog is how the appliance installs it.
func TestLogRingCatchesPackageLog(t *testing.T) {
	l := NewLogRing(10)
	lg := log.New(io.MultiWriter(io.Discard, l), "", log.LstdFlags)
	lg.Printf("relay: DERP over TLS listening on tcp %s", "[::]:12345")
	got := l.Lines()
	if len(got) != 1 || !strings.HasSuffix(got[0].Text, "relay: DERP over TLS listening on tcp [::]:12345") {
		t.Errorf("lines: %+v", got)
	}
}

func BenchmarkLogRingWrite(b *testing.B) {
	l := NewLogRing(200)
	line := []byte("2026/05/01 12:00:00 derp: client abc123 connected from 198.51.100.7:41234\n")
	b.ReportAllocs()
	for b.Loop() {
		l.Write(line)
	}
}

func TestListeners(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	ls := &Listeners{Handler: h, Logf: t.Logf}
	t.Cleanup(ls.Close)
	if err := ls.Set([]string{"127.0.0.1:0", "[::1]:0"}); err != nil {
		t.Logf("Set: %v (IPv6 loopback may be missing)", err)
	}
	addrs := ls.Addrs()
	if len(addrs) == 0 {
		t.Fatal("no listener")
	}
	get := func(addr net.Addr) error {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + addr.String() + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	for _, a := range addrs {
		if err := get(a); err != nil {
			t.Errorf("GET %v: %v", a, err)
		}
	}

	// A taken port is reported; the other listener keeps serving.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	v4 := ""
	for _, a := range addrs {
		if strings.HasPrefix(a.String(), "127.") {
			v4 = a.String()
		}
	}
	err = ls.Set([]string{"127.0.0.1:0", taken.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Errorf("Set with a taken port: got %v, want an error naming it", err)
	}
	if err := get(mustAddr(t, v4)); err != nil {
		t.Errorf("the existing listener stopped: %v", err)
	}

	// An address that vanished is closed.
	if err := ls.Set(nil); err != nil {
		t.Fatal(err)
	}
	if len(ls.Addrs()) != 0 {
		t.Errorf("after Set(nil): %v", ls.Addrs())
	}
	if err := get(mustAddr(t, v4)); err == nil {
		t.Error("a removed listener still answers")
	}
}

func mustAddr(t *testing.T, s string) net.Addr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
