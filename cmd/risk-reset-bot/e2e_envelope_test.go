package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"risk-reset-bot/internal/slackfake"
)

// TestEveryEnvelopeAckedOnceBeforeWork walks a whole request, plus
// envelopes the bot has no use for, holding every Web API call until the
// envelope that caused it is acked: each envelope must be acked once, in
// time, without waiting for any call.
func TestEveryEnvelopeAckedOnceBeforeWork(t *testing.T) {
	h := newHarness(t)
	h.start()
	gate := h.gateCallsOnAcks()
	slash := func(user, text string) func() (string, error) {
		return func() (string, error) {
			return h.slack.SendSlashCommand(h.ctx, slackfake.SlashCommand{UserID: user, ChannelID: channelOps, Text: text})
		}
	}
	click := func(user string, card slackfake.Message, actionID string) func() (string, error) {
		return func() (string, error) {
			return h.slack.SendBlockAction(h.ctx, slackfake.BlockAction{UserID: user, ChannelID: card.Channel, MessageTS: card.TS, ActionID: actionID, Value: cardRequestID(t, card)})
		}
	}
	var ids []string

	ids = append(ids, gate.send(slash(analyst, "alice@example.com travel false positive")))
	card := h.card(channelOps, aliceID)
	h.threadReply(card, "Requested by")
	ids = append(ids, gate.send(click(stranger, card, "risk_reset_approve")))
	h.ephemeral(stranger, "not an approver")
	ids = append(ids, gate.send(click(lead, card, "risk_reset_approve")))
	h.auditRecord("Risk reset succeeded")

	ids = append(ids, gate.send(slash(analyst, "bob@example.com new laptop")))
	bobCard := h.card(channelOps, bobID)
	h.threadReply(bobCard, "Requested by")
	ids = append(ids, gate.send(click(lead, bobCard, "risk_reset_reject")))
	if _, err := h.slack.WaitView(h.ctx, nil); err != nil {
		t.Fatalf("no deny form: %v", err)
	}
	ids = append(ids, gate.send(slash(analyst, "<!here>")))

	for name, frame := range map[string]string{
		"events_api": `{"envelope_id":%q,"type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":"",` +
			`"payload":{"token":"x","team_id":"T0001","api_app_id":"A0001","type":"event_callback","event_id":"Ev0001","event_time":1700000000,` +
			`"event":{"type":"app_mention","user":"U0001","text":"<@U0BOT> hi","ts":"1700000000.000100","channel":"C0001","event_ts":"1700000000.000100"}}}`,
		"made-up type":      `{"envelope_id":%q,"type":"quantum_entanglement","payload":{"spin":"up"}}`,
		"malformed payload": `{"envelope_id":%q,"type":"slash_commands","payload":"this is not an object","accepts_response_payload":true}`,
		"malformed click":   `{"envelope_id":%q,"type":"interactive","payload":{"type":"block_actions","actions":"not a list"}}`,
	} {
		id := gate.send(func() (string, error) {
			id := uuid.NewString()
			return id, h.slack.SendEnvelope(h.ctx, fmt.Appendf(nil, frame, id))
		})
		if ack := h.ackOf(id); len(ack.Payload) != 0 {
			t.Errorf("%s envelope acked with payload %s", name, ack.Payload)
		}
		ids = append(ids, id)
	}

	// Still serving after all that.
	ids = append(ids, gate.send(slash(lead, "<@U0ALICE> travel again")))
	h.threadReply(h.waitNewCard(card, aliceID), "Requested by")

	for _, id := range ids {
		h.assertAckedOnce(id)
	}
	gate.check()
	if frames := h.slack.UnknownFrames(); len(frames) != 0 {
		t.Errorf("the bot sent frames that are not acks: %q", frames)
	}
}

// TestBadInputAnsweredInAck checks that input the parser rejects is
// answered with usage in the ack itself and goes no further: no Web API
// call, no Cloudflare request, nothing echoed back.
func TestBadInputAnsweredInAck(t *testing.T) {
	h := newHarness(t)
	h.start()

	long := strings.Repeat("a", 5000)
	inputs := []struct {
		name, text, want string
		// Said back to the user, it would show the input was echoed.
		echo string
	}{
		{"channel", "<#C0001|soc-ops>", "That is a channel", "soc-ops"},
		{"here", "<!here>", "Group mentions", "<!here>"},
		{"two targets", "alice@example.com bob@example.com", "one user at a time", "bob@example.com"},
		{"path", "../../etc/passwd", "could not read a user", "passwd"},
		{"5000 characters", long, "too long", strings.Repeat("a", 100)},
		{"help", "help", "Usage", ""},
		{"empty", "", "Usage", ""},
		{"blank", "  \t ", "Usage", ""},
	}
	var firstSent slackfake.Ack
	for i, in := range inputs {
		id, _ := h.command(analyst, channelOps, in.text)
		ack := h.assertAckedOnce(id)
		if i == 0 {
			firstSent = ack
		}
		text := usageAck(t, ack)
		if !strings.Contains(text, in.want) || !strings.Contains(text, "/risk-reset <user> [reason]") {
			t.Errorf("%s: ack text %q lacks %q or the usage", in.name, text, in.want)
		}
		if in.echo != "" && strings.Contains(text, in.echo) {
			t.Errorf("%s: ack text echoes the input: %q", in.name, text)
		}
	}

	// A good command afterwards: once its card is out, anything the bad
	// inputs had set off would have happened too.
	sentinelID, _ := h.command(analyst, channelOps, bobID+" sentinel")
	sentinel := h.ackOf(sentinelID)
	h.threadReply(h.card(channelOps, bobID), "Requested by")
	for _, c := range h.slack.Calls("") {
		if c.At.After(firstSent.SentAt) && c.At.Before(sentinel.SentAt) {
			t.Errorf("%s was called after a bad input: %v", c.Method, c.Form)
		}
	}
	if posts := h.answersTo("", ""); len(posts) != 0 {
		t.Errorf("bad inputs were answered through response_url as well: %q", posts)
	}
	for _, r := range h.cfSrv.Requests() {
		if !strings.Contains(r.Path, bobID) {
			t.Errorf("Cloudflare got a request not caused by the sentinel: %s %s?%s", r.Method, r.Path, r.Query.Encode())
		}
	}
	sent := h.slackTraffic() + h.cloudflareTraffic()
	for _, in := range inputs {
		if strings.TrimSpace(in.text) != "" && in.text != "help" && strings.Contains(sent, in.text) {
			t.Errorf("%s: the raw input reached Slack or Cloudflare", in.name)
		}
	}
	if got := len(h.allCards()); got != 1 {
		t.Errorf("%d cards posted, want only the sentinel's", got)
	}
}

// TestRedeliveredEnvelopesHandledOnce redelivers a slash command and an
// approve click, as Slack does when an ack is late: each is acked again
// but acted on once.
func TestRedeliveredEnvelopesHandledOnce(t *testing.T) {
	h := newHarness(t)
	h.start()

	cmdID, _ := h.command(analyst, channelOps, "alice@example.com travel")
	card := h.card(channelOps, aliceID)
	h.threadReply(card, "Requested by")
	if err := h.slack.Redeliver(h.ctx, cmdID); err != nil {
		t.Fatalf("redeliver command: %v", err)
	}

	clickID := h.click(lead, card, "risk_reset_approve")
	if err := h.slack.Redeliver(h.ctx, clickID); err != nil {
		t.Fatalf("redeliver click: %v", err)
	}
	h.waitCard(card, "Risk score reset")
	h.auditRecord("Risk reset succeeded")

	// A later request for someone else: acks go out in order on the one
	// connection, and by the time its card is out the redeliveries,
	// dispatched before it, have been dealt with.
	h.command(analyst, channelOps, "bob@example.com sentinel")
	h.threadReply(h.card(channelOps, bobID), "Requested by")

	for _, id := range []string{cmdID, clickID} {
		if n := h.slack.AckCount(id); n != 2 {
			t.Errorf("envelope %s acked %d times, want 2 (once per delivery)", id, n)
		}
	}
	for _, id := range []string{cmdID, clickID} {
		if lines := h.logs.logLines(map[string]string{"envelope_id": id, "message": "ignored redelivered envelope"}); len(lines) != 1 {
			t.Errorf("envelope %s: %d 'ignored redelivered envelope' log lines, want 1", id, len(lines))
		}
	}
	if got := len(h.cards(channelOps, aliceID)); got != 1 {
		t.Errorf("%d cards for Alice, want 1", got)
	}
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
	if posts := h.answersTo("", ""); len(posts) != 0 {
		t.Errorf("a redelivery was answered (so it was handled twice): %q", posts)
	}
	if n := len(h.slack.Messages(channelAudit)); n != 1 {
		t.Errorf("%d audit records, want 1", n)
	}
}
