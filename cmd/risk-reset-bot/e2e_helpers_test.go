package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

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

// assertAckedFirst checks that envelopeID was acked once and that no Web
// API call or response_url post arrived between the envelope going out and
// its ack. Callers make sure earlier flows have finished, so any call in
// that window was caused by this envelope.
func (h *harness) assertAckedFirst(envelopeID string) {
	h.t.Helper()
	ack := h.ackOf(envelopeID)
	for _, c := range h.slack.Calls("") {
		if c.At.After(ack.SentAt) && c.At.Before(ack.At) {
			h.t.Errorf("%s was called %v before envelope %s was acked", c.Method, ack.At.Sub(c.At), envelopeID)
		}
	}
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

// ephemeralsTo returns the texts of the ephemeral answers user got that
// contain text.
func (h *harness) ephemeralsTo(user, text string) []string {
	var out []string
	for _, p := range h.slack.ResponseURLPosts() {
		if p.UserID == user && p.Ephemeral && strings.Contains(p.Text, text) {
			out = append(out, p.Text)
		}
	}
	return out
}

// nthEphemeral waits for the n-th (1-based) ephemeral answer to user that
// contains text, so a test can tell a new answer from an earlier one.
func (h *harness) nthEphemeral(user, text string, n int) string {
	h.t.Helper()
	seen := 0
	p, err := h.slack.WaitResponsePost(h.ctx, func(p slackfake.ResponsePost) bool {
		if p.UserID == user && p.Ephemeral && strings.Contains(p.Text, text) {
			seen++
		}
		return seen >= n
	})
	if err != nil {
		h.t.Fatalf("no ephemeral #%d to %s with %q: %v\nephemerals: %+v\nlogs:\n%s", n, user, text, err, h.slack.ResponseURLPosts(), h.logs.String())
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
