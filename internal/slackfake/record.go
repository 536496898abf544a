package slackfake

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// notifyLocked wakes every waiter; they re-check what they wait for.
// A closed-and-replaced channel (rather than sync.Cond) lets waiters also
// select on their context.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until found (run under s.mu) reports true or ctx ends.
// describe (also under s.mu, may be nil) says what was seen, for the
// timeout error.
func (s *Server) waitFor(ctx context.Context, what string, found func() bool, describe func() string) error {
	for {
		s.mu.Lock()
		if found() {
			s.mu.Unlock()
			return nil
		}
		if s.closed {
			s.mu.Unlock()
			return fmt.Errorf("slackfake: waiting for %s: %w", what, ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			seen := "nothing recorded"
			if describe != nil {
				seen = describe()
			}
			s.mu.Unlock()
			return fmt.Errorf("slackfake: waiting for %s (seen: %s): %w", what, seen, err)
		}
		changed := s.changed
		s.mu.Unlock()

		select {
		case <-ctx.Done():
		case <-changed:
		}
	}
}

// waitMatch waits for the first item of snapshot (taken under s.mu) that
// match accepts. match runs without the lock, so it may call the Server.
func waitMatch[T any](ctx context.Context, s *Server, what string, snapshot func() []T, match func(T) bool, describe func([]T) string) (T, error) {
	for {
		s.mu.Lock()
		items := snapshot()
		closed, changed := s.closed, s.changed
		s.mu.Unlock()

		for _, item := range items {
			if match == nil || match(item) {
				return item, nil
			}
		}
		var zero T
		if closed {
			return zero, fmt.Errorf("slackfake: waiting for %s: %w", what, ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return zero, fmt.Errorf("slackfake: waiting for %s (seen: %s): %w", what, describe(items), err)
		}
		select {
		case <-ctx.Done():
		case <-changed:
		}
	}
}

// Calls returns the recorded calls of method, oldest first ("" for all).
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callsLocked(method)
}

func (s *Server) callsLocked(method string) []Call {
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, cloneCall(c))
		}
	}
	return out
}

// WaitCall returns the first call of method, past or future, that match
// accepts (nil accepts any). Like every Wait method it returns when ctx
// ends, with an error naming what was seen; matchers run without the
// fake's lock and may call the Server.
func (s *Server) WaitCall(ctx context.Context, method string, match func(Call) bool) (Call, error) {
	return waitMatch(ctx, s, "call to "+method,
		func() []Call { return s.callsLocked(method) },
		match,
		func(calls []Call) string {
			if len(calls) == 0 {
				return "no calls to " + method
			}
			parts := make([]string, 0, len(calls))
			for _, c := range calls {
				parts = append(parts, fmt.Sprintf("status=%d error=%q", c.Status, c.Error))
			}
			return strings.Join(parts, "; ")
		})
}

// Messages returns the messages of channel in posting order ("" for all
// channels), each with its latest content.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messagesLocked(channel)
}

func (s *Server) messagesLocked(channel string) []Message {
	var out []Message
	for _, m := range s.messages {
		if channel == "" || m.Channel == channel {
			out = append(out, m.snapshot())
		}
	}
	return out
}

// WaitMessage returns the first message, in posting order and with its
// latest content, that match accepts; it also fires when chat.update or a
// response_url makes an existing message match.
func (s *Server) WaitMessage(ctx context.Context, match func(Message) bool) (Message, error) {
	return waitMatch(ctx, s, "message",
		func() []Message { return s.messagesLocked("") },
		match,
		func(msgs []Message) string {
			if len(msgs) == 0 {
				return "no messages"
			}
			parts := make([]string, 0, len(msgs))
			for _, m := range msgs {
				parts = append(parts, fmt.Sprintf("%s/%s thread=%q updates=%d text=%q", m.Channel, m.TS, m.ThreadTS, m.Updates, truncate(m.Text, 80)))
			}
			return strings.Join(parts, "; ")
		})
}

// Ephemerals returns the chat.postEphemeral messages, oldest first.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ephemeralsLocked()
}

func (s *Server) ephemeralsLocked() []Ephemeral {
	out := slices.Clone(s.ephemerals)
	for i := range out {
		out[i].Blocks = slices.Clone(out[i].Blocks)
	}
	return out
}

// WaitEphemeral returns the first chat.postEphemeral message match accepts.
func (s *Server) WaitEphemeral(ctx context.Context, match func(Ephemeral) bool) (Ephemeral, error) {
	return waitMatch(ctx, s, "ephemeral message", s.ephemeralsLocked, match,
		func(all []Ephemeral) string {
			parts := []string{fmt.Sprintf("%d ephemerals", len(all))}
			for _, e := range all {
				parts = append(parts, fmt.Sprintf("%s to %s: %q", e.Channel, e.User, truncate(e.Text, 80)))
			}
			return strings.Join(parts, "; ")
		})
}

// ResponseURLPosts returns the accepted response_url posts, oldest first.
func (s *Server) ResponseURLPosts() []ResponsePost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.responsePostsLocked()
}

func (s *Server) responsePostsLocked() []ResponsePost {
	out := slices.Clone(s.responsePosts)
	for i := range out {
		out[i] = cloneResponsePost(out[i])
	}
	return out
}

// WaitResponsePost returns the first accepted response_url post match accepts.
func (s *Server) WaitResponsePost(ctx context.Context, match func(ResponsePost) bool) (ResponsePost, error) {
	return waitMatch(ctx, s, "response_url post", s.responsePostsLocked, match,
		func(posts []ResponsePost) string {
			parts := []string{fmt.Sprintf("%d posts", len(posts))}
			for _, p := range posts {
				parts = append(parts, fmt.Sprintf("ephemeral=%t replace=%t text=%q", p.Ephemeral, p.ReplaceOriginal, truncate(p.Text, 80)))
			}
			return strings.Join(parts, "; ")
		})
}

// Views returns the modals opened with views.open, oldest first.
func (s *Server) Views() []OpenedView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.viewsLocked()
}

func (s *Server) viewsLocked() []OpenedView {
	out := make([]OpenedView, 0, len(s.views))
	for _, v := range s.views {
		out = append(out, v.snapshot())
	}
	return out
}

// WaitView returns the first modal opened with views.open that match accepts.
func (s *Server) WaitView(ctx context.Context, match func(OpenedView) bool) (OpenedView, error) {
	return waitMatch(ctx, s, "opened view", s.viewsLocked, match,
		func(views []OpenedView) string { return fmt.Sprintf("%d views", len(views)) })
}

// Acks returns the acks the bot sent, oldest first.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acksLocked()
}

func (s *Server) acksLocked() []Ack {
	out := slices.Clone(s.acks)
	for i := range out {
		out[i].Payload = slices.Clone(out[i].Payload)
	}
	return out
}

// WaitAck returns the first ack for envelopeID.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	return waitMatch(ctx, s, "ack of "+envelopeID, s.acksLocked,
		func(a Ack) bool { return a.EnvelopeID == envelopeID },
		func(acks []Ack) string { return fmt.Sprintf("%d acks, none for this envelope", len(acks)) })
}

// AckCount is how many acks envelopeID received.
func (s *Server) AckCount(envelopeID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.acks {
		if a.EnvelopeID == envelopeID {
			n++
		}
	}
	return n
}

// UnknownFrames returns every frame the bot sent that is not an ack of an
// envelope the fake sent.
func (s *Server) UnknownFrames() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, 0, len(s.unknown))
	for _, f := range s.unknown {
		out = append(out, slices.Clone(f))
	}
	return out
}

func cloneCall(c Call) Call {
	c.Form = url.Values(maps.Clone(map[string][]string(c.Form)))
	if c.JSON != nil {
		c.JSON = cloneJSONMap(c.JSON)
	}
	return c
}

// cloneJSONMap deep-copies a decoded JSON object so callers cannot race
// with each other through shared nested maps.
func cloneJSONMap(m map[string]any) map[string]any {
	raw, err := json.Marshal(m)
	if err != nil {
		return maps.Clone(m)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return maps.Clone(m)
	}
	return out
}

func cloneResponsePost(p ResponsePost) ResponsePost {
	p.Blocks = slices.Clone(p.Blocks)
	p.Body = slices.Clone(p.Body)
	return p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
