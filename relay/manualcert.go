package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/homederp/homederp/internal/statefile"
	"github.com/homederp/homederp/internal/usermsg"
	"tailscale.com/types/logger"
)

// ManualCertPaths returns where the user's certificate and key for
// hostname live in dir: <hostname>.crt and <hostname>.key with the
// characters derper drops (anything but letters, digits, '-' and '.')
// removed, so a directory prepared for derper's --certmode=manual works
// unchanged.
func ManualCertPaths(dir, hostname string) (crt, key string) {
	name := safeHostname(hostname)
	return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
}

// maxPEMSize bounds what is read from a certificate or key file.
const maxPEMSize = 1 << 20

// ManualCerts serves a certificate pair the user supplies
// (ManualCertPaths) and reloads it when the files change. A pair that
// cannot serve the hostname (unreadable, key and certificate not
// belonging together, wrong name, expired) is rejected with an error in
// CertInfo and the certificate served before stays in use. Until a good
// pair has loaded, the fallback (the self-signed certificate) is served.
type ManualCerts struct {
	hostname         string
	crtPath, keyPath string
	fallback         CertSource // may be nil
	logf             logger.Logf
	now              func() time.Time

	cur atomic.Pointer[tls.Certificate]

	mu      sync.Mutex
	stamp   [2]fileStamp // of the pair looked at last
	err     error        // why the pair on disk is not served; nil if it is
	lastTry time.Time    // when the pair was last read
}

// retryBadPair is how often an unchanged pair that failed is read again,
// for failures that time can cure (a clock not yet synchronized).
const retryBadPair = time.Minute

// fileStamp tells whether a file changed since it was last read.
type fileStamp struct {
	exists bool
	size   int64
	mtime  time.Time
	ino    uint64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{exists: true, size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, nil
}

// NewManualCerts returns a source for hostname's pair in dir and loads it
// once. now is the clock (nil means time.Now). Call Run to keep
// reloading.
func NewManualCerts(dir, hostname string, fallback CertSource, logf logger.Logf, now func() time.Time) *ManualCerts {
	if now == nil {
		now = time.Now
	}
	crt, key := ManualCertPaths(dir, hostname)
	m := &ManualCerts{hostname: hostname, crtPath: crt, keyPath: key, fallback: fallback, logf: logf, now: now}
	m.Reload()
	return m
}

// Run calls Reload every interval until ctx is done. Polling the size,
// time and inode of two small files every few seconds costs nothing and,
// unlike inotify, also sees files replaced by rename or written over a
// network share.
func (m *ManualCerts) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Reload()
		}
	}
}

// Reload loads the pair if either file changed since it was last looked
// at, and returns why the pair on disk is not being served (nil if it
// is).
func (m *ManualCerts) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var stamp [2]fileStamp
	for i, p := range []string{m.crtPath, m.keyPath} {
		st, err := stampOf(p)
		if err != nil {
			m.setErrLocked(fmt.Errorf("reading %s: %w", p, err))
			return m.err
		}
		stamp[i] = st
	}
	now := m.now()
	unchanged := stamp == m.stamp && !m.lastTry.IsZero()
	if unchanged && (m.err == nil || now.Sub(m.lastTry) < retryBadPair) {
		return m.err
	}
	m.stamp, m.lastTry = stamp, now
	c, err := m.load(stamp)
	if err != nil {
		m.setErrLocked(err)
		return err
	}
	m.cur.Store(c)
	m.err = nil
	m.logf("relay: serving the manual certificate %s (issued by %s, valid until %s)", m.crtPath, issuerName(c.Leaf), c.Leaf.NotAfter.UTC().Format(time.DateOnly))
	return nil
}

func (m *ManualCerts) setErrLocked(err error) {
	if m.err == nil || m.err.Error() != err.Error() {
		if m.cur.Load() != nil {
			m.logf("relay: manual certificate not reloaded, the previous one stays in use: %v", err)
		} else {
			m.logf("relay: manual certificate not usable: %v", err)
		}
	}
	m.err = err
}

func (m *ManualCerts) load(stamp [2]fileStamp) (*tls.Certificate, error) {
	if !stamp[0].exists || !stamp[1].exists {
		return nil, fmt.Errorf("put the certificate (with its chain) in %s and its private key in %s", m.crtPath, m.keyPath)
	}
	crtPEM, err := readLimited(m.crtPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readLimited(m.keyPath)
	if err != nil {
		return nil, err
	}
	c, err := parsePair(crtPEM, keyPEM, m.hostname, m.now())
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", filepath.Base(m.crtPath), filepath.Base(m.keyPath), err)
	}
	return c, nil
}

// parsePair checks that a PEM certificate (with its chain) and key belong
// together and can serve hostname at now.
func parsePair(crtPEM, keyPEM []byte, hostname string, now time.Time) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(crtPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("not a usable certificate and key pair: %w", err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = Leaf(&c); err != nil {
			return nil, err
		}
	}
	if err := checkLeaf(c.Leaf, hostname, now); err != nil {
		return nil, err
	}
	return &c, nil
}

// InstallManualPair checks a certificate and key the user supplies (e.g.
// pasted into the web UI) and, only if they can serve hostname, writes
// them where ManualCerts reads them: the key 0600, both atomically. A bad
// pair is refused with the reason and the files on disk stay as they are.
// The running relay picks the new pair up at its next reload.
func InstallManualPair(dir, hostname string, crtPEM, keyPEM []byte, now time.Time) (*x509.Certificate, error) {
	if len(crtPEM) > maxPEMSize || len(keyPEM) > maxPEMSize {
		return nil, fmt.Errorf("larger than %d bytes; that is not a certificate or key", maxPEMSize)
	}
	c, err := parsePair(crtPEM, keyPEM, hostname, now)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0700); err != nil {
		return nil, err
	}
	crt, key := ManualCertPaths(dir, hostname)
	// The key first: a reload between the two writes sees a mismatched
	// pair, refuses it and keeps serving the old one until the next poll.
	if err := statefile.Write(key, keyPEM, 0600); err != nil {
		return nil, err
	}
	if err := statefile.Write(crt, crtPEM, 0644); err != nil {
		return nil, err
	}
	return c.Leaf, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxPEMSize {
		return nil, fmt.Errorf("%s is larger than %d bytes; it is not a certificate file", path, maxPEMSize)
	}
	return b, nil
}

// GetCertificate serves the last good pair, or the fallback before one
// has loaded.
func (m *ManualCerts) GetCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := m.cur.Load(); c != nil {
		return c, nil
	}
	if m.fallback != nil {
		return m.fallback.GetCertificate(hi)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return nil, fmt.Errorf("no manual certificate: %v", m.err)
}

// CertInfo reports mode "manual" and, if the pair on disk is not the one
// served, why.
func (m *ManualCerts) CertInfo() CertInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	info := CertInfo{Mode: "manual"}
	if m.err == nil {
		return info
	}
	args := map[string]any{"Err": m.err.Error()}
	switch {
	case m.cur.Load() != nil:
		info.Error, info.Msg = usermsg.Say("relaystate.manual_previous", "{{.Err}}; the previous certificate stays in use", args)
	case m.fallback != nil:
		info.Error, info.Msg = usermsg.Say("relaystate.manual_fallback", "{{.Err}}; serving the self-signed certificate meanwhile", args)
	default:
		info.Error = m.err.Error()
	}
	return info
}
