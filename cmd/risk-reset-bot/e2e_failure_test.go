package main

import (
	"strings"
	"testing"
	"time"

	"risk-reset-bot/internal/cfapitest"
)

func TestResetWithoutWritePermission(t *testing.T) {
	h := newHarness(t)
	h.cf.Deny(cfapitest.OpResetRisk)
	h.start()
	card := h.pendingCard()

	h.click(lead, card, "risk_reset_approve")
	now := h.waitCard(card, "Reset failed")
	if strings.Contains(string(now.Blocks), "risk_reset_approve") {
		t.Errorf("failed card still has buttons: %s", now.Blocks)
	}
	reply := h.threadReply(card, "the reset failed")
	for _, want := range []string{"Zero Trust Write", cfapitest.FakeRay} {
		if !strings.Contains(reply.Text, want) {
			t.Errorf("thread reply lacks %q: %q", want, reply.Text)
		}
	}
	record := h.auditRecord("Risk reset failed")
	for _, text := range []string{reply.Text, record.Text, blockText(t, now)} {
		for _, raw := range []string{`{"`, `"success"`, `"errors"`, "Authentication error"} {
			if strings.Contains(text, raw) {
				t.Errorf("a raw Cloudflare answer (%s) reached Slack: %q", raw, text)
			}
		}
	}
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d, want 0", n)
	}
	if n := h.cf.Calls(cfapitest.OpResetRisk); n != 1 {
		t.Errorf("%d reset calls, want 1 (a 403 is not retried)", n)
	}
}

func TestTokenThatCannotReadRisk(t *testing.T) {
	h := newHarness(t)
	h.cf.Deny(cfapitest.OpGetUserRisk)
	h.start()

	card := h.pendingCard()
	text := blockText(t, card)
	if !strings.Contains(text, "unavailable") || !strings.Contains(text, "Zero Trust PII Read") {
		t.Errorf("card does not say the risk is unavailable and why: %s", text)
	}
	if !strings.Contains(text, aliceEmail) {
		t.Errorf("card lacks the target's email: %s", text)
	}

	h.click(lead, card, "risk_reset_approve")
	// The reset cannot be read back with this token, and the card says so
	// rather than claiming it was verified.
	h.waitCard(card, "not verified")
	h.threadReply(card, "could not be read back")
	h.auditRecord("Risk reset succeeded")
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
}

func TestBotNotInChannel(t *testing.T) {
	h := newHarness(t)
	h.start()

	h.command(analyst, channelOther, "alice@example.com travel")
	p := h.ephemeral(analyst, "not a member of <#"+channelOther+">")
	if !strings.Contains(p.Text, "/invite") {
		t.Errorf("ephemeral does not say how to invite the bot: %q", p.Text)
	}
	if msgs := h.slack.Messages(channelOther); len(msgs) != 0 {
		t.Errorf("messages in a channel the bot is not in: %+v", msgs)
	}

	// Nothing is left pending for Alice.
	h.command(analyst, channelOps, "alice@example.com travel")
	h.card(channelOps, aliceID)
	if got := h.answersTo(analyst, "already a pending request"); len(got) != 0 {
		t.Errorf("the failed card left a pending request behind: %q", got)
	}
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d, want 0", n)
	}
}

// TestSlackRateLimitWaitedOut takes about a second: Slack's Retry-After
// is in whole seconds.
func TestSlackRateLimitWaitedOut(t *testing.T) {
	h := newHarness(t)
	h.slack.RateLimitNext("chat.postMessage", time.Second)
	h.start()

	h.command(analyst, channelOps, "alice@example.com travel")
	card := h.card(channelOps, aliceID)
	h.threadReply(card, "Requested by")
	calls := h.slack.Calls("chat.postMessage")
	if len(calls) < 2 || calls[0].Status != 429 || calls[1].Status != 200 {
		t.Fatalf("chat.postMessage calls: want a 429 then a 200, got %+v", calls)
	}
	if wait := calls[1].At.Sub(calls[0].At); wait < time.Second {
		t.Errorf("retried after %v, before Retry-After (1s)", wait)
	}
	if got := len(h.cards(channelOps, aliceID)); got != 1 {
		t.Errorf("%d cards, want 1", got)
	}
	if posts := h.answersTo("", ""); len(posts) != 0 {
		t.Errorf("requester was told of a problem: %q", posts)
	}
}

// TestSecretsStayOut runs a flow with Slack and Cloudflare errors at debug
// level and searches logs and everything sent to Slack for the tokens.
func TestSecretsStayOut(t *testing.T) {
	h := newHarness(t, withEnv("LOG_LEVEL", "debug"))
	h.cf.Inject(cfapitest.OpListUsers, cfapitest.Fault{Status: 403})
	h.cf.Inject(cfapitest.OpResetRisk, cfapitest.Fault{Status: 400, Code: 7001, Message: "bad request"})
	h.slack.FailNext("chat.update", "internal_error")
	h.slack.FailNext("chat.getPermalink", "fatal_error")
	h.start()

	h.command(analyst, channelOps, "alice@example.com travel")
	h.ephemeral(analyst, "Audit Logs Read")
	h.command(analyst, channelOther, "alice@example.com travel")
	h.ephemeral(analyst, "not a member")

	card := h.pendingCard()
	h.click(lead, card, "risk_reset_approve")
	h.threadReply(card, "the reset failed")
	h.auditRecord("Risk reset failed")

	secrets := map[string]string{
		"Cloudflare token": cfToken, "Slack bot token": h.slack.BotToken(), "Slack app token": h.slack.AppToken(),
		"Cloudflare token fragment": "SECRET-e2e", "bot token fragment": "fakebottoken", "app token fragment": "fakeapptoken",
	}
	slackSide := h.slackTraffic()
	logs := h.logs.String()
	for name, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("%s appears in the logs", name)
		}
		if strings.Contains(slackSide, s) {
			t.Errorf("%s appears in what was sent to Slack", name)
		}
	}
	for _, c := range h.slack.Calls("") {
		if strings.Contains(c.Form.Get("token"), cfToken) {
			t.Errorf("the Cloudflare token was sent to Slack in %s", c.Method)
		}
	}
	if len(h.logs.logLines(map[string]string{"level": "debug"})) == 0 {
		t.Errorf("no debug lines logged; the test did not exercise debug logging")
	}
}
