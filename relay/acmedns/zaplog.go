package acmedns

import (
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogfCore is a zap core that prints each entry of level info and
// above as one logf line: "acme: <logger> <message> {fields}". certmagic
// and acmez log through zap; homederp logs through a printf-shaped logf
// (the web UI shows the recent lines).
func newLogfCore(logf func(format string, args ...any)) zapcore.Core {
	enc := zapcore.NewConsoleEncoder(zapcore.EncoderConfig{
		MessageKey:       "msg",
		NameKey:          "logger",
		LevelKey:         "level",
		EncodeLevel:      zapcore.LowercaseLevelEncoder,
		EncodeName:       zapcore.FullNameEncoder,
		EncodeDuration:   zapcore.StringDurationEncoder,
		ConsoleSeparator: " ",
	})
	return zapcore.NewCore(enc, logfSink{logf}, zapcore.InfoLevel)
}

type logfSink struct {
	logf func(format string, args ...any)
}

func (s logfSink) Write(p []byte) (int, error) {
	s.logf("acme: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (logfSink) Sync() error { return nil }

// zapLogf sends certmagic's log lines (info and above) to logf.
func zapLogf(logf func(format string, args ...any)) *zap.Logger {
	return zap.New(newLogfCore(logf))
}
