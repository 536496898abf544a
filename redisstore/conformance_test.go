package redisstore_test

import (
	"testing"
	"time"

	"risk-reset-bot/request"
	"risk-reset-bot/request/storetest"
)

// TestConformance holds the Redis store to the behaviour MemStore has, so
// the bot sees one contract whichever it is given.
func TestConformance(t *testing.T) {
	redisURL(t) // skip (or fail in CI) once, not in every case
	storetest.Run(t, func(t *testing.T, now func() time.Time) request.Store {
		return newStore(t, newPrefix(t), now)
	})
}
