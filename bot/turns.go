package bot

import (
	"context"
	"sync"
)

// turns gives out one turn at a time per key: one post at a time to each
// channel, one update at a time to each card.
//
// For posts: Slack takes about one message per second per channel and
// answers more with 429 and Retry-After; when many handlers post to one
// channel at once (the audit channel in a burst), each would wait out
// Retry-After and retry together, and all but one would be refused again.
// In line, only the head of the queue meets the limit. Different channels
// do not wait for each other, and with Slack's round trip of ~100 ms one
// channel still gets more posts a second than Slack accepts, so the queue
// never slows the bot below Slack's own pace. For cards, see refreshCard.
type turns struct {
	mu    sync.Mutex
	lines map[string]*turnLine
}

// turnLine is one key's queue: a one-slot semaphore, and how many callers
// hold or wait for it, so idle keys are forgotten.
type turnLine struct {
	turn  chan struct{}
	users int
}

func newTurns() *turns { return &turns{lines: map[string]*turnLine{}} }

// wait returns when it is the caller's turn for key, with the
// function that ends the turn; or the context's error when it ends first.
func (q *turns) wait(ctx context.Context, key string) (done func(), err error) {
	q.mu.Lock()
	line := q.lines[key]
	if line == nil {
		line = &turnLine{turn: make(chan struct{}, 1)}
		q.lines[key] = line
	}
	line.users++
	q.mu.Unlock()

	select {
	case line.turn <- struct{}{}:
		return func() { <-line.turn; q.leave(key, line) }, nil
	case <-ctx.Done():
		q.leave(key, line)
		return nil, ctx.Err()
	}
}

func (q *turns) leave(key string, line *turnLine) {
	q.mu.Lock()
	defer q.mu.Unlock()
	line.users--
	if line.users == 0 {
		delete(q.lines, key)
	}
}

// busy reports whether someone holds or waits for key's turn. The answer
// may change at once, so it serves only to say why a caller may wait.
func (q *turns) busy(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lines[key] != nil
}
