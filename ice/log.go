package ice

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogger bridges pion's LoggerFactory to the injected *slog.Logger.
type pionLogger struct{ l *slog.Logger }

func (f pionLogger) NewLogger(scope string) logging.LeveledLogger {
	return pionLeveled{f.l.With("pion", scope)}
}

type pionLeveled struct{ l *slog.Logger }

func (p pionLeveled) log(level slog.Level, msg string) {
	p.l.Log(context.Background(), level, msg)
}

func (p pionLeveled) logf(level slog.Level, format string, args []interface{}) {
	if p.l.Enabled(context.Background(), level) {
		p.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (p pionLeveled) Trace(msg string)                  {}
func (p pionLeveled) Tracef(string, ...interface{})     {}
func (p pionLeveled) Debug(msg string)                  { p.log(slog.LevelDebug, msg) }
func (p pionLeveled) Debugf(f string, a ...interface{}) { p.logf(slog.LevelDebug, f, a) }
func (p pionLeveled) Info(msg string)                   { p.log(slog.LevelInfo, msg) }
func (p pionLeveled) Infof(f string, a ...interface{})  { p.log(slog.LevelInfo, fmt.Sprintf(f, a...)) }
func (p pionLeveled) Warn(msg string)                   { p.log(slog.LevelWarn, msg) }
func (p pionLeveled) Warnf(f string, a ...interface{})  { p.log(slog.LevelWarn, fmt.Sprintf(f, a...)) }
func (p pionLeveled) Error(msg string)                  { p.log(slog.LevelError, msg) }
func (p pionLeveled) Errorf(f string, a ...interface{}) { p.logf(slog.LevelError, f, a) }
