// Package logging builds the bot's zerolog loggers.
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"risk-reset-bot/internal/buildinfo"
)

// FieldRequestID is the log field holding a request's id.
const FieldRequestID = "request_id"

const serviceName = "risk-reset-bot"

// timeFormat is RFC 3339 with milliseconds, so lines from one second keep
// their order in log stores.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// New returns a logger writing to w at level (trace, debug, info, warn or
// error; empty means info) in format json (the default) or console.
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return zerolog.Nop(), err
	}
	switch strings.ToLower(format) {
	case "", "json":
	case "console":
		w = zerolog.ConsoleWriter{
			Out:          w,
			NoColor:      !isTerminal(w),
			TimeFormat:   timeFormat,
			TimeLocation: time.UTC,
		}
	default:
		return zerolog.Nop(), fmt.Errorf("logging: unknown format %q (want json or console)", format)
	}
	return zerolog.New(w).
		Level(lvl).
		Hook(utcTimestamp{}).
		With().
		Str("service", serviceName).
		Str("version", buildinfo.Version).
		Logger(), nil
}

// WithRequestID returns l with every line tagged with the request id.
func WithRequestID(l zerolog.Logger, id string) zerolog.Logger {
	return l.With().Str(FieldRequestID, id).Logger()
}

func parseLevel(s string) (zerolog.Level, error) {
	switch strings.ToLower(s) {
	case "trace":
		return zerolog.TraceLevel, nil
	case "debug":
		return zerolog.DebugLevel, nil
	case "", "info":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("logging: unknown level %q (want trace, debug, info, warn or error)", s)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// utcTimestamp adds the time in UTC. zerolog's own Timestamp reads package
// globals, which this package would otherwise have to change for everyone.
type utcTimestamp struct{}

func (utcTimestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().UTC().Format(timeFormat))
}
