package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"risk-reset-bot/internal/slackfake"
)

// ackOf returns the single ack of envelopeID, failing the test when the
// envelope was acked more or less than once.
func (h *harness) ackOf(envelopeID string) slackfake.Ack {
	h.t.Helper()
	if n := h.slack.AckCount(envelopeID); n != 1 {
		h.t.Errorf("envelope %s acked %d times, want 1", envelopeID, n)
	}
	for _, a := range h.slack.Acks() {
		if a.EnvelopeID == envelopeID {
			return a
		}
	}
	h.t.Fatalf("envelope %s never acked", envelopeID)
	return slackfake.Ack{}
}

// maxAckDelay is Slack's limit: an envelope not acked within it is
// redelivered and the user sees an error.
const maxAckDelay = 3 * time.Second

// assertAckedOnce checks that envelopeID was acked exactly once, in time.
func (h *harness) assertAckedOnce(envelopeID string) slackfake.Ack {
	h.t.Helper()
	ack := h.ackOf(envelopeID)
	if d := ack.At.Sub(ack.SentAt); d > maxAckDelay {
		h.t.Errorf("envelope %s acked after %v, over Slack's %v", envelopeID, d, maxAckDelay)
	}
	return ack
}

// usageAck decodes an ack that answers with an ephemeral message and
// returns its text.
func usageAck(t *testing.T, ack slackfake.Ack) string {
	t.Helper()
	var p struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal(ack.Payload, &p); err != nil {
		t.Fatalf("ack payload %q is not a message: %v", ack.Payload, err)
	}
	if p.ResponseType != "ephemeral" {
		t.Errorf("ack payload response_type = %q, want ephemeral: %s", p.ResponseType, ack.Payload)
	}
	if p.Text == "" {
		t.Errorf("ack payload has no text: %s", ack.Payload)
	}
	return p.Text
}

// cards returns the cards (pending or not) in channel whose text mentions
// target, as they are now.
func (h *harness) cards(channel, target string) []slackfake.Message {
	h.t.Helper()
	var out []slackfake.Message
	for _, m := range h.slack.Messages(channel) {
		if m.ThreadTS == "" && strings.Contains(string(m.Blocks), "rr_summary") && strings.Contains(blockText(h.t, m), target) {
			out = append(out, m)
		}
	}
	return out
}

// allCards returns every card, pending or not, in any channel.
func (h *harness) allCards() []slackfake.Message {
	var out []slackfake.Message
	for _, m := range h.slack.Messages("") {
		if m.ThreadTS == "" && m.Channel != channelAudit && strings.Contains(string(m.Blocks), "rr_summary") {
			out = append(out, m)
		}
	}
	return out
}

// current returns the card with its latest content.
func (h *harness) current(card slackfake.Message) slackfake.Message {
	h.t.Helper()
	for _, m := range h.slack.Messages(card.Channel) {
		if m.TS == card.TS {
			return m
		}
	}
	h.t.Fatalf("card %s/%s is gone", card.Channel, card.TS)
	return slackfake.Message{}
}

// answersTo returns the texts of the response_url answers user ("" for
// anyone) got that contain text.
func (h *harness) answersTo(user, text string) []string {
	var out []string
	for _, p := range h.slack.ResponseURLPosts() {
		if (user == "" || p.UserID == user) && strings.Contains(p.Text, text) {
			out = append(out, p.Text)
		}
	}
	return out
}

// nthEphemeral waits for the n-th (1-based) ephemeral answer to user that
// contains text, so a test can tell a new answer from an earlier one.
func (h *harness) nthEphemeral(user, text string, n int) string {
	h.t.Helper()
	// The matcher sees every post again each time the fake changes, so
	// posts are counted once each, by where and when they arrived.
	seen := map[string]bool{}
	p, err := h.slack.WaitResponsePost(h.ctx, func(p slackfake.ResponsePost) bool {
		if p.UserID == user && p.Ephemeral && strings.Contains(p.Text, text) {
			seen[p.URL+p.At.String()] = true
		}
		return len(seen) >= n
	})
	if err != nil {
		h.t.Fatalf("no ephemeral #%d to %s with %q: %v\nephemerals: %q\nlogs:\n%s", n, user, text, err, h.answersTo("", ""), h.logs.String())
	}
	return p.Text
}

// slackTraffic renders everything the bot sent to Slack — Web API
// arguments (tokens aside), response_url bodies, acks — and everything
// Slack now shows, so a test can search it for what must not be there.
func (h *harness) slackTraffic() string {
	var sb strings.Builder
	for _, c := range h.slack.Calls("") {
		form := url.Values{}
		for k, v := range c.Form {
			if k != "token" {
				form[k] = v
			}
		}
		fmt.Fprintf(&sb, "call %s %s\n", c.Method, form.Encode())
	}
	for _, p := range h.slack.ResponseURLPosts() {
		fmt.Fprintf(&sb, "response_url %s\n", p.Body)
	}
	for _, a := range h.slack.Acks() {
		fmt.Fprintf(&sb, "ack %s\n", a.Payload)
	}
	for _, m := range h.slack.Messages("") {
		fmt.Fprintf(&sb, "message %s %s\n", m.Text, m.Blocks)
	}
	return sb.String()
}

// cloudflareTraffic renders the path, query and body of every request
// Cloudflare received.
func (h *harness) cloudflareTraffic() string {
	var sb strings.Builder
	for _, r := range h.cfSrv.Requests() {
		fmt.Fprintf(&sb, "%s %s?%s %s\n", r.Method, r.Path, r.Query.Encode(), r.Body)
	}
	return sb.String()
}

// assertNoCard fails when any confirmation card was posted.
func (h *harness) assertNoCard() {
	h.t.Helper()
	if cards := h.allCards(); len(cards) != 0 {
		h.t.Errorf("a card was posted: %+v", cards)
	}
}

// ackGate holds every Web API call and response_url post that arrives
// after an envelope was sent until that envelope is acked. A bot that made
// a call before (or in order to) ack would keep its ack back while the
// call is held, and the gate reports it. It tests that acks never wait on
// the network without depending on which goroutine wins the race to the
// wire: slack-go only queues an ack, so a handler's first call may reach
// Slack a few microseconds before the ack frame even in a correct bot.
type ackGate struct {
	h *harness

	mu         sync.Mutex
	envelopeID string
	known      chan struct{} // closed once envelopeID is set
	violations []string
}

// gateCallsOnAcks installs an ackGate as the fake Slack's hook.
func (h *harness) gateCallsOnAcks() *ackGate {
	g := &ackGate{h: h}
	h.slack.SetHook(func(method string, _ url.Values) (int, any, bool) {
		g.hold(method)
		return 0, nil, false
	})
	return g
}

// send sends an envelope through send, which returns its id, arming the
// gate before it goes out, and waits for its ack.
func (g *ackGate) send(send func() (string, error)) string {
	g.h.t.Helper()
	known := make(chan struct{})
	g.mu.Lock()
	g.envelopeID, g.known = "", known
	g.mu.Unlock()
	id, err := send()
	if err != nil {
		g.h.t.Fatalf("sending envelope: %v", err)
	}
	g.mu.Lock()
	g.envelopeID = id
	close(known)
	g.mu.Unlock()
	if _, err := g.h.slack.WaitAck(g.h.ctx, id); err != nil {
		g.h.t.Fatalf("envelope not acked: %v\nlogs:\n%s", err, g.h.logs.String())
	}
	return id
}

// ackHoldLimit is how long a held call waits for the ack; a correct bot
// acks within milliseconds.
const ackHoldLimit = 5 * time.Second

func (g *ackGate) hold(method string) {
	g.mu.Lock()
	known := g.known
	g.mu.Unlock()
	if known == nil {
		return
	}
	ctx, cancel := context.WithTimeout(g.h.ctx, ackHoldLimit)
	defer cancel()
	select {
	case <-known:
	case <-ctx.Done():
		g.fail(fmt.Sprintf("%s: the envelope being sent never got an id", method))
		return
	}
	g.mu.Lock()
	id := g.envelopeID
	g.mu.Unlock()
	if _, err := g.h.slack.WaitAck(ctx, id); err != nil {
		g.fail(fmt.Sprintf("%s was called and envelope %s was not acked while the call was held: %v", method, id, err))
	}
}

func (g *ackGate) fail(msg string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.violations = append(g.violations, msg)
}

// check reports what the gate saw.
func (g *ackGate) check() {
	g.h.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, v := range g.violations {
		g.h.t.Error(v)
	}
}

// waitNewCard waits for a pending card about target other than old.
func (h *harness) waitNewCard(old slackfake.Message, target string) slackfake.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx, func(m slackfake.Message) bool {
		return m.Channel == old.Channel && m.TS != old.TS && m.ThreadTS == "" &&
			strings.Contains(string(m.Blocks), "risk_reset_approve") && strings.Contains(blockText(h.t, m), target)
	})
	if err != nil {
		h.t.Fatalf("no new card for %s: %v\nephemerals: %q\nlogs:\n%s", target, err, h.answersTo("", ""), h.logs.String())
	}
	return m
}

// await waits for a signal on ch, failing the test with what (and the
// bot's logs) when the harness's deadline comes first.
func (h *harness) await(ch <-chan struct{}, what string) {
	h.t.Helper()
	select {
	case <-ch:
	case <-h.ctx.Done():
		h.t.Fatalf("%s\nlogs:\n%s", what, h.logs.String())
	}
}
