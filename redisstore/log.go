package redisstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// logAdapter sends go-redis's own messages (pool dial failures, reconnects)
// into the service's structured log instead of plain lines on stderr.
type logAdapter struct {
	log    zerolog.Logger
	secret string
}

func (a logAdapter) Printf(_ context.Context, format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	a.log.Warn().Str("component", "go-redis").Msg(scrub(msg, a.secret))
}

// routeLibraryLogs installs log as go-redis's logger. go-redis has one
// logger per process, so the last store opened decides where it goes.
func routeLibraryLogs(log *zerolog.Logger, secret string) {
	if log == nil {
		return
	}
	redis.SetLogger(logAdapter{log: *log, secret: secret})
}
