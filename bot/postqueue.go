package bot

import (
	"context"
	"sync"
)

// postQueue lets one post at a time go to each channel. Slack takes about
// one message per second per channel and answers more with 429 and
// Retry-After; when many handlers post to one channel at once (the audit
// channel in a burst), each would wait out Retry-After and retry together,
// and all but one would be refused again. In line, only the head of the
// queue meets the limit. Posts to different channels do not wait for each
// other, and with Slack's round trip of ~100 ms one channel still gets more
// posts a second than Slack accepts, so the queue never slows the bot below
// Slack's own pace.
type postQueue struct {
	mu    sync.Mutex
	lines map[string]*postLine
}

// postLine is one channel's queue: a one-slot semaphore, and how many
// posts hold or wait for it, so idle channels are forgotten.
type postLine struct {
	turn  chan struct{}
	users int
}

func newPostQueue() *postQueue { return &postQueue{lines: map[string]*postLine{}} }

// wait returns when it is the caller's turn to post to channel, with the
// function that ends the turn; or the context's error when it ends first.
func (q *postQueue) wait(ctx context.Context, channel string) (done func(), err error) {
	q.mu.Lock()
	line := q.lines[channel]
	if line == nil {
		line = &postLine{turn: make(chan struct{}, 1)}
		q.lines[channel] = line
	}
	line.users++
	q.mu.Unlock()

	select {
	case line.turn <- struct{}{}:
		return func() { <-line.turn; q.leave(channel, line) }, nil
	case <-ctx.Done():
		q.leave(channel, line)
		return nil, ctx.Err()
	}
}

func (q *postQueue) leave(channel string, line *postLine) {
	q.mu.Lock()
	defer q.mu.Unlock()
	line.users--
	if line.users == 0 {
		delete(q.lines, channel)
	}
}
