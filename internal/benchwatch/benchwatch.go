// Package benchwatch times what reaches the Slack and Cloudflare fakes, for
// the bench command and the Go benchmarks alike: they wait on these records
// instead of polling the fakes' whole histories.
package benchwatch

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Call is a Slack Web API call as it reached the fake.
type Call struct {
	Method, Channel, ThreadTS, Text string
	At                              time.Time
}

// Calls records every Web API call through the Slack fake's hook.
type Calls struct {
	mu    sync.Mutex
	calls []Call
	wake  chan struct{} // closed and replaced on every call
}

// NewCalls returns an empty record; install its Hook with the fake's SetHook.
func NewCalls() *Calls { return &Calls{wake: make(chan struct{})} }

// Hook is a slackfake hook that records the call and lets it through.
func (w *Calls) Hook(method string, form url.Values) (int, any, bool) {
	c := Call{Method: method, Channel: form.Get("channel"), ThreadTS: form.Get("thread_ts"), Text: form.Get("text"), At: time.Now()}
	w.mu.Lock()
	w.calls = append(w.calls, c)
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
	return 0, nil, false
}

// Mark returns the index of the next call to arrive.
func (w *Calls) Mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.calls)
}

// Next waits for the first call at or after index from that matches, and
// returns it with the index after it.
func (w *Calls) Next(ctx context.Context, from int, match func(Call) bool) (Call, int, error) {
	for {
		w.mu.Lock()
		for ; from < len(w.calls); from++ {
			if c := w.calls[from]; match(c) {
				w.mu.Unlock()
				return c, from + 1, nil
			}
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return Call{}, from, fmt.Errorf("waiting for a Slack call: %w", ctx.Err())
		}
	}
}

// Wait returns the first n calls at or after mark that match.
func (w *Calls) Wait(ctx context.Context, mark, n int, match func(Call) bool) ([]Call, error) {
	found := make([]Call, 0, n)
	for len(found) < n {
		c, next, err := w.Next(ctx, mark, match)
		if err != nil {
			return nil, fmt.Errorf("saw %d of %d: %w", len(found), n, err)
		}
		found, mark = append(found, c), next
	}
	return found, nil
}

// Resets serves the Cloudflare fake and notes when each reset arrived and
// when it was answered.
type Resets struct {
	next http.Handler
	mu   sync.Mutex
	seen map[string]ResetTimes // by user id
	wake chan struct{}         // closed and replaced on every reset
}

// ResetTimes is when a reset reached the fake and when the fake answered it.
type ResetTimes struct{ Received, Answered time.Time }

// NewResets wraps the Cloudflare fake next.
func NewResets(next http.Handler) *Resets {
	return &Resets{next: next, seen: map[string]ResetTimes{}, wake: make(chan struct{})}
}

func (w *Resets) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/reset") {
		w.next.ServeHTTP(rw, req)
		return
	}
	received := time.Now()
	w.next.ServeHTTP(rw, req)
	answered := time.Now()
	parts := strings.Split(req.URL.Path, "/")
	user := parts[len(parts)-2]
	w.mu.Lock()
	w.seen[user] = ResetTimes{Received: received, Answered: answered}
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

// Get waits for the reset of user.
func (w *Resets) Get(ctx context.Context, user string) (ResetTimes, error) {
	for {
		w.mu.Lock()
		t, ok := w.seen[user]
		wake := w.wake
		w.mu.Unlock()
		if ok {
			return t, nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ResetTimes{}, fmt.Errorf("no reset of %s: %w", user, ctx.Err())
		}
	}
}
