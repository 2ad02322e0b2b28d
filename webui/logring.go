package webui

import (
	"bytes"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
)

// maxLogLine bounds one stored line, so a runaway message cannot make the
// status page (or the ring's memory) large.
const maxLogLine = 1024

// LogLine is one line of the appliance's log.
type LogLine struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"` // e.g. "2026/05/01 10:00:00 relay: DERP over TLS listening on tcp [::]:12345"
}

// LogRing keeps the most recent lines of the appliance's log for the
// status page. It is an io.Writer, so the appliance can install it with
// log.SetOutput(io.MultiWriter(os.Stderr, ring)) and catch every line,
// including those of upstream packages that log through package log.
// It is safe for concurrent use; memory is bounded by size lines of at
// most 1 KiB.
type LogRing struct {
	now func() time.Time

	mu      sync.Mutex
	lines   []LogLine // ring; next is the oldest once full
	next    int
	full    bool
	partial []byte // a line written without its newline yet
}

// NewLogRing returns a ring holding the last size lines.
func NewLogRing(size int) *LogRing {
	if size < 1 {
		size = 1
	}
	return &LogRing{now: time.Now, lines: make([]LogLine, size)}
}

// Write stores each complete line of p. A line split across writes is
// joined first.
func (l *LogRing) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(l.partial) < maxLogLine {
				l.partial = append(l.partial, p[:min(len(p), maxLogLine-len(l.partial))]...)
			}
			break
		}
		line := p[:i]
		if len(l.partial) > 0 {
			line = append(l.partial, line...)
			l.partial = l.partial[:0]
		}
		l.addLocked(line)
		p = p[i+1:]
	}
	return n, nil
}

// Logf records one formatted line; it has the shape of logger.Logf.
func (l *LogRing) Logf(format string, args ...any) {
	l.Write([]byte(fmt.Sprintf(format, args...) + "\n"))
}

func (l *LogRing) addLocked(line []byte) {
	if len(line) > maxLogLine {
		line = line[:maxLogLine]
		for len(line) > 0 && !utf8.Valid(line) { // do not cut a rune in half
			line = line[:len(line)-1]
		}
	}
	l.lines[l.next] = LogLine{Time: l.now(), Text: string(bytes.ToValidUTF8(line, []byte("?")))}
	l.next++
	if l.next == len(l.lines) {
		l.next, l.full = 0, true
	}
}

// Lines returns the stored lines, oldest first.
func (l *LogRing) Lines() []LogLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.full {
		return append([]LogLine(nil), l.lines[:l.next]...)
	}
	out := make([]LogLine, 0, len(l.lines))
	out = append(out, l.lines[l.next:]...)
	return append(out, l.lines[:l.next]...)
}
