package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// apiEvent is a Slack Web API call as it reached the fake.
type apiEvent struct {
	method, channel, threadTS, text string
	at                              time.Time
}

// callWatch records every Web API call through the Slack fake's hook, so
// the bench waits without copying the fake's whole history on each call.
type callWatch struct {
	mu     sync.Mutex
	events []apiEvent
	wake   chan struct{} // closed and replaced on every call
}

func newCallWatch() *callWatch { return &callWatch{wake: make(chan struct{})} }

func (w *callWatch) hook(method string, form url.Values) (int, any, bool) {
	e := apiEvent{method: method, channel: form.Get("channel"), threadTS: form.Get("thread_ts"), text: form.Get("text"), at: time.Now()}
	w.mu.Lock()
	w.events = append(w.events, e)
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
	return 0, nil, false
}

func (w *callWatch) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// next waits for the first call at or after index from that matches, and
// returns it with the index after it.
func (w *callWatch) next(ctx context.Context, from int, match func(apiEvent) bool) (apiEvent, int, error) {
	for {
		w.mu.Lock()
		for ; from < len(w.events); from++ {
			if e := w.events[from]; match(e) {
				w.mu.Unlock()
				return e, from + 1, nil
			}
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return apiEvent{}, from, fmt.Errorf("waiting for a Slack call: %w", ctx.Err())
		}
	}
}

// wait returns the first n calls after mark that match.
func (w *callWatch) wait(ctx context.Context, mark, n int, match func(apiEvent) bool) ([]apiEvent, error) {
	found := make([]apiEvent, 0, n)
	for len(found) < n {
		e, next, err := w.next(ctx, mark, match)
		if err != nil {
			return nil, fmt.Errorf("saw %d of %d: %w", len(found), n, err)
		}
		found, mark = append(found, e), next
	}
	return found, nil
}

// resetWatch serves the Cloudflare fake and notes when each reset arrived
// and when it was answered.
type resetWatch struct {
	next http.Handler
	mu   sync.Mutex
	seen map[string]resetTimes // by user id
	wake chan struct{}         // closed and replaced on every reset
}

type resetTimes struct{ received, answered time.Time }

func newResetWatch(next http.Handler) *resetWatch {
	return &resetWatch{next: next, seen: map[string]resetTimes{}, wake: make(chan struct{})}
}

func (w *resetWatch) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
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
	w.seen[user] = resetTimes{received: received, answered: answered}
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

func (w *resetWatch) get(ctx context.Context, user string) (resetTimes, error) {
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
			return resetTimes{}, fmt.Errorf("no reset of %s: %w", user, ctx.Err())
		}
	}
}
