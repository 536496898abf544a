package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

func TestApprovalsTwoPersonRule(t *testing.T) {
	h := startApprovals(t)

	card := h.openCard(analyst, aliceEmail, "travel false positive", aliceID)
	policy := blockTextByID(t, card, "rr_policy")
	for _, want := range []string{"approver other than the requester", "<!subteam^" + leadsGroup + ">"} {
		if !strings.Contains(policy, want) {
			t.Errorf("card does not say who may approve (%q): %q", want, policy)
		}
	}
	h.click(analyst, card, approveButton)
	h.ephemeral(analyst, "cannot approve your own request")

	// The lead may request and approve, but not both on one request.
	bobCard := h.openCard(lead, bobEmail, "new laptop", bobID)
	h.click(lead, bobCard, approveButton)
	h.ephemeral(lead, "cannot approve your own request")

	h.assertUntouched(card)
	h.assertUntouched(bobCard)
	h.assertResets(aliceID, 0)
	refusals := h.logs.logLines(map[string]string{"event": "audit", "action": "click_denied", "refusal": "self_approval"})
	if len(refusals) != 2 {
		t.Errorf("%d self_approval audit log lines, want 2", len(refusals))
	}

	// Each card is still live for an approver who did not request it.
	h.click(lead, card, approveButton)
	h.waitCard(card, "Risk score reset")
	h.click(lead2, bobCard, approveButton)
	h.waitCard(bobCard, "Risk score reset")
	if a, b := h.cf.Resets(aliceID), h.cf.Resets(bobID); a != 1 || b != 1 {
		t.Errorf("resets alice=%d bob=%d, want 1 each", a, b)
	}
}

func TestApprovalsTwoApproversRequired(t *testing.T) {
	h := startApprovals(t, withEnv("REQUIRED_APPROVALS", "2"))

	card := h.openCard(analyst, aliceEmail, "travel false positive", aliceID)
	if policy := blockTextByID(t, card, "rr_policy"); !strings.Contains(policy, "2 different approvers") {
		t.Errorf("card does not say two approvals are needed: %q", policy)
	}

	h.click(lead, card, approveButton)
	first := h.waitCard(card, "Approved by <@"+lead+"> (1 of 2)")
	h.threadReply(card, "Approved by <@"+lead+"> (1 of 2)")
	if !hasButtons(first) {
		t.Errorf("card lost its buttons after the first of two approvals: %s", blockText(t, first))
	}
	h.assertResets(aliceID, 0)
	if records := h.slack.Messages(channelAudit); len(records) != 0 {
		t.Errorf("audit records after one of two approvals: %+v", records)
	}

	h.click(lead, card, approveButton)
	h.ephemeral(lead, "already approved")
	h.click(analyst, card, approveButton)
	h.ephemeral(analyst, "cannot approve your own request")
	h.assertResets(aliceID, 0)

	h.click(lead2, card, approveButton)
	done := h.waitCard(card, "Risk score reset")
	both := "Approved by <@" + lead + ">, <@" + lead2 + "> (2 of 2)"
	if !strings.Contains(blockText(t, done), both) {
		t.Errorf("finished card lacks %q: %s", both, blockText(t, done))
	}
	h.threadReply(card, "Done")
	record := h.auditRecord("Risk reset succeeded")
	if !strings.Contains(record.Text, both) {
		t.Errorf("audit record lacks %q: %q", both, record.Text)
	}
	h.assertResets(aliceID, 1)
	if n := len(h.replies(card, "Done")); n != 1 {
		t.Errorf("%d \"Done\" replies, want 1", n)
	}
}

func TestApprovalsNoSelfService(t *testing.T) {
	t.Run("requester is the target", func(t *testing.T) {
		h := startApprovals(t)
		h.slack.AddUser(slackfake.User{ID: analyst, Name: "analyst", Email: aliceEmail})

		h.command(analyst, channelOps, "alice@example.com travel")
		h.ephemeral(analyst, "own risk score")
		record := h.auditRecord("Refused")
		if !strings.Contains(record.Text, "<@"+analyst+">") {
			t.Errorf("audit record does not name who was refused: %q", record.Text)
		}
		lines := h.logs.logLines(map[string]string{"event": "audit", "action": "command_denied", "actor": analyst, "refusal": "self_target"})
		if len(lines) != 1 {
			t.Errorf("%d self_target audit log lines, want 1", len(lines))
		}
		if cards := h.cardsAbout(aliceID); len(cards) != 0 {
			t.Errorf("a card was posted for a self-service request: %+v", cards)
		}
		h.assertResets(aliceID, 0)
	})

	t.Run("approver is the target", func(t *testing.T) {
		h := startApprovals(t)
		// Emails compare case-insensitively.
		h.slack.AddUser(slackfake.User{ID: lead2, Name: "lead2", Email: "Alice@Example.COM"})

		card := h.openCard(analyst, aliceEmail, "travel", aliceID)
		h.click(lead2, card, approveButton)
		h.ephemeral(lead2, "own risk score")
		h.assertUntouched(card)
		h.assertResets(aliceID, 0)
		lines := h.logs.logLines(map[string]string{"event": "audit", "action": "click_denied", "actor": lead2, "refusal": "self_target"})
		if len(lines) != 1 {
			t.Errorf("%d self_target click audit log lines, want 1", len(lines))
		}

		h.click(lead, card, approveButton)
		h.waitCard(card, "Risk score reset")
		h.assertResets(aliceID, 1)
	})

	t.Run("requester without email", func(t *testing.T) {
		h := startApprovals(t)
		h.slack.AddUser(slackfake.User{ID: analyst, Name: "analyst"})

		h.command(analyst, channelOps, "alice@example.com travel")
		h.ephemeral(analyst, "users:read.email")
		h.auditRecord("Refused")
		if cards := h.cardsAbout(aliceID); len(cards) != 0 {
			t.Errorf("a card was posted although the requester's email is unknown: %+v", cards)
		}
		h.assertResets(aliceID, 0)
	})
}

func TestApprovalsRemovedApprover(t *testing.T) {
	t.Run("group cache off", func(t *testing.T) {
		h := startApprovals(t, withEnv("GROUP_CACHE_TTL", "0"))
		card := h.openCard(analyst, aliceEmail, "travel", aliceID)

		h.slack.SetGroupMembers(leadsGroup, lead)
		h.click(lead2, card, approveButton)
		h.ephemeral(lead2, "not an approver")
		h.click(lead2, card, rejectButton)
		h.ephemeral(lead2, "the requester or an approver can reject")
		h.assertUntouched(card)
		h.assertResets(aliceID, 0)

		h.click(lead, card, approveButton)
		h.waitCard(card, "Risk score reset")
		h.assertResets(aliceID, 1)
	})

	t.Run("group cache expired", func(t *testing.T) {
		h := startApprovals(t) // the default cache keeps memberships a minute
		card := h.openCard(analyst, aliceEmail, "travel", aliceID)

		// A refused stranger makes the bot read (and cache) the group while
		// lead2 is still in it.
		h.click(stranger, card, approveButton)
		h.ephemeral(stranger, "not an approver")
		lookups := len(h.slack.Calls("usergroups.users.list"))
		if lookups == 0 {
			t.Fatal("the bot never looked up the approver group")
		}

		h.slack.SetGroupMembers(leadsGroup, lead)
		h.clock.Advance(2 * time.Minute)
		h.click(lead2, card, approveButton)
		h.ephemeral(lead2, "not an approver")
		if n := len(h.slack.Calls("usergroups.users.list")); n <= lookups {
			t.Errorf("the group was not looked up again after the cache expired (%d lookups)", n)
		}
		h.assertUntouched(card)
		h.assertResets(aliceID, 0)
	})
}

func TestApprovalsExpiry(t *testing.T) {
	t.Run("nobody clicks", func(t *testing.T) {
		h := startApprovals(t)
		card := h.openCard(analyst, aliceEmail, "travel", aliceID)

		h.clock.Advance(31 * time.Minute)
		expired := h.waitCard(card, "Expired")
		if hasButtons(expired) {
			t.Errorf("expired card still has buttons: %s", blockText(t, expired))
		}
		h.threadReply(card, "Expired")
		record := h.auditRecord("Risk reset expired")
		if !strings.Contains(record.Text, aliceID) {
			t.Errorf("expiry audit record lacks the target: %q", record.Text)
		}

		h.click(lead, card, approveButton)
		h.ephemeral(lead, "has expired")
		h.click(analyst, card, rejectButton)
		h.ephemeral(analyst, "expired")
		h.assertResets(aliceID, 0)
		if n := len(h.replies(card, "Expired")); n != 1 {
			t.Errorf("%d \"Expired\" replies, want 1", n)
		}
		if n := len(h.slack.Messages(channelAudit)); n != 1 {
			t.Errorf("%d audit records, want 1", n)
		}
	})

	t.Run("click at the expiry instant", func(t *testing.T) {
		h := startApprovals(t)
		card := h.openCard(analyst, aliceEmail, "travel", aliceID)

		// REQUEST_TTL is 30m and the clock has not moved since the request.
		h.clock.Advance(30 * time.Minute)
		h.click(lead, card, approveButton)
		h.ephemeral(lead, "has expired")
		h.waitCard(card, "Expired")
		h.threadReply(card, "Expired")
		h.auditRecord("Risk reset expired")

		h.assertResets(aliceID, 0)
		if n := len(h.replies(card, "Expired")); n != 1 {
			t.Errorf("%d \"Expired\" replies, want 1", n)
		}
		if n := len(h.slack.Messages(channelAudit)); n != 1 {
			t.Errorf("%d audit records, want 1", n)
		}
		requestID := cardRequestID(t, card)
		var toExpired int
		for _, l := range h.auditLines(requestID) {
			if l["state_to"] == "expired" {
				toExpired++
			}
			if l["state_to"] == "executing" {
				t.Errorf("the click at the expiry instant was approved: %v", l)
			}
		}
		if toExpired != 1 {
			t.Errorf("%d audit log lines to expired, want 1", toExpired)
		}
	})
}

func TestApprovalsDuplicatePending(t *testing.T) {
	h := startApprovals(t)
	card := h.openCard(analyst, aliceEmail, "travel", aliceID)

	h.command(lead, channelOps, "alice@example.com also travel")
	text := h.ephemeral(lead, "already a pending request").Text
	link := "/archives/" + channelOps + "/p" + strings.ReplaceAll(card.TS, ".", "")
	for _, want := range []string{link, cardRequestID(t, card), "<@" + analyst + ">"} {
		if !strings.Contains(text, want) {
			t.Errorf("duplicate notice lacks %q: %q", want, text)
		}
	}
	if cards := h.cardsAbout(aliceID); len(cards) != 1 {
		t.Errorf("%d cards for alice, want 1", len(cards))
	}

	h.click(analyst, card, rejectButton)
	h.waitCard(card, "Cancelled by <@"+analyst+">")

	h.command(lead, channelOps, "alice@example.com also travel")
	fresh, err := h.slack.WaitMessage(h.ctx, func(m slackfake.Message) bool {
		return m.Channel == channelOps && m.ThreadTS == "" && m.TS != card.TS && hasButtons(m)
	})
	if err != nil {
		t.Fatalf("no new card after the pending one was cancelled: %v\nephemerals: %+v", err, h.slack.ResponseURLPosts())
	}
	if !strings.Contains(blockText(t, fresh), aliceID) {
		t.Errorf("new card is not about alice: %s", blockText(t, fresh))
	}
	if n := len(h.ephemeralsTo(lead, "already a pending request")); n != 1 {
		t.Errorf("%d duplicate notices, want 1", n)
	}
}

func TestApprovalsReasonModal(t *testing.T) {
	t.Run("reason asked, then given", func(t *testing.T) {
		h := startApprovals(t, withEnv("REQUIRE_REASON", "true"))

		_, ack := h.command(analyst, channelOps, "alice@example.com")
		if len(ack.Payload) != 0 && string(ack.Payload) != "null" {
			t.Errorf("ack of a command without reason carries a payload: %s", ack.Payload)
		}
		view := h.modal(reasonCallback, 1)
		for _, want := range []string{aliceEmail, aliceID} {
			if !strings.Contains(string(view.View), want) {
				t.Errorf("reason modal does not show %q: %s", want, view.View)
			}
		}
		// The fake records a call as it answers, just after the view changed.
		if _, err := h.slack.WaitCall(h.ctx, "views.update", nil); err != nil {
			t.Fatalf("views.update never answered: %v", err)
		}
		if o, u := len(h.slack.Calls("views.open")), len(h.slack.Calls("views.update")); o != 1 || u != 1 {
			t.Errorf("views.open %d times, views.update %d times; want 1 each", o, u)
		}

		empty := h.submitReason(analyst, view.ID, "   ")
		var answer struct {
			ResponseAction string            `json:"response_action"`
			Errors         map[string]string `json:"errors"`
		}
		if err := json.Unmarshal(empty.Payload, &answer); err != nil || answer.ResponseAction != "errors" || answer.Errors["rr_reason"] == "" {
			t.Errorf("empty reason acked with %s, want response_action errors on rr_reason (%v)", empty.Payload, err)
		}

		reason := "travel false positive, INC-4711"
		if ack := h.submitReason(analyst, view.ID, reason); len(ack.Payload) != 0 && string(ack.Payload) != "null" {
			t.Errorf("a valid reason was acked with %s", ack.Payload)
		}
		card := h.card(channelOps, aliceID)
		if !strings.Contains(blockText(t, card), reason) {
			t.Errorf("card lacks the reason: %s", blockText(t, card))
		}
		h.threadReply(card, "Requested by <@"+analyst+">")
		if cards := h.cardsAbout(aliceID); len(cards) != 1 {
			t.Errorf("%d cards, want 1 (the empty submission must not post one)", len(cards))
		}
	})

	t.Run("trigger expired", func(t *testing.T) {
		slackClock := &fakeClock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
		h := startApprovals(t, withEnv("REQUIRE_REASON", "true"), withSlackOnClock(slackClock))
		// The bot's views.open arrives after the trigger's three seconds.
		h.slack.SetHook(func(method string, _ url.Values) (int, any, bool) {
			if method == "views.open" {
				slackClock.Advance(slackfake.TriggerTTL + time.Second)
			}
			return 0, nil, false
		})

		h.command(analyst, channelOps, "alice@example.com")
		text := h.ephemeral(analyst, "Run the command again").Text
		if !strings.Contains(text, "Nothing was changed") {
			t.Errorf("expired-trigger notice does not say nothing changed: %q", text)
		}
		if calls := h.slack.Calls("views.open"); len(calls) != 1 || calls[0].Error != "expired_trigger_id" {
			t.Errorf("views.open calls = %+v, want one refused with expired_trigger_id", calls)
		}
		if views := h.slack.Views(); len(views) != 0 {
			t.Errorf("a modal was opened: %+v", views)
		}
		if cards := h.cardsAbout(aliceID); len(cards) != 0 {
			t.Errorf("a card was posted: %+v", cards)
		}
	})

	t.Run("trigger invalid", func(t *testing.T) {
		h := startApprovals(t, withEnv("REQUIRE_REASON", "true"))
		h.slack.FailNext("views.open", "invalid_trigger_id")

		h.command(analyst, channelOps, "alice@example.com")
		text := h.ephemeral(analyst, "Run the command again").Text
		for _, want := range []string{"Nothing was changed", "`/risk-reset <user> <reason>`"} {
			if !strings.Contains(text, want) {
				t.Errorf("invalid-trigger notice lacks %q: %q", want, text)
			}
		}
		if cards := h.cardsAbout(aliceID); len(cards) != 0 {
			t.Errorf("a card was posted: %+v", cards)
		}
	})

	t.Run("reason inline", func(t *testing.T) {
		h := startApprovals(t, withEnv("REQUIRE_REASON", "true"))

		card := h.openCard(analyst, aliceEmail, "travel false positive", aliceID)
		if !strings.Contains(blockText(t, card), "travel false positive") {
			t.Errorf("card lacks the inline reason: %s", blockText(t, card))
		}
		if calls := h.slack.Calls("views.open"); len(calls) != 0 {
			t.Errorf("a modal was opened although the reason was given: %+v", calls)
		}
	})
}

func TestApprovalsDenyWithReason(t *testing.T) {
	h := startApprovals(t)
	card := h.openCard(analyst, aliceEmail, "travel", aliceID)

	h.click(lead2, card, rejectButton)
	view := h.modal(denyCallback, 0)
	h.assertUntouched(card)

	if ack := h.submitReason(lead2, view.ID, "not a false positive"); len(ack.Payload) != 0 && string(ack.Payload) != "null" {
		t.Errorf("deny form acked with %s", ack.Payload)
	}
	denied := h.waitCard(card, "Denied by <@"+lead2+">")
	if hasButtons(denied) {
		t.Errorf("denied card still has buttons: %s", blockText(t, denied))
	}
	h.threadReply(card, "Reason: not a false positive")
	record := h.auditRecord("Risk reset denied")
	for _, want := range []string{"not a false positive", "<@" + lead2 + ">"} {
		if !strings.Contains(record.Text, want) {
			t.Errorf("deny audit record lacks %q: %q", want, record.Text)
		}
	}
	lines := h.logs.logLines(map[string]string{"event": "audit", "request_id": cardRequestID(t, card), "state_to": "denied", "actor": lead2})
	if len(lines) != 1 {
		t.Errorf("%d audit log lines for the denial, want 1", len(lines))
	}
	h.assertResets(aliceID, 0)

	// The requester's own reject cancels at once, without a form.
	bobCard := h.openCard(analyst, bobEmail, "new laptop", bobID)
	h.click(analyst, bobCard, rejectButton)
	h.waitCard(bobCard, "Cancelled by <@"+analyst+">")
	h.threadReply(bobCard, "Cancelled by <@"+analyst+">")
	if views := h.slack.Views(); len(views) != 1 {
		t.Errorf("%d modals opened, want only the approver's deny form", len(views))
	}
	h.assertResets(bobID, 0)
}

func TestApprovalsAuditChannelUnwritable(t *testing.T) {
	const lockedAudit = "C0LOCKED"
	h := startApprovals(t, withEnv("AUDIT_CHANNEL_ID", lockedAudit))
	h.slack.AddChannel(slackfake.Channel{ID: lockedAudit, Name: "soc-audit-locked", BotIsMember: false})

	card := h.openCard(analyst, aliceEmail, "travel", aliceID)
	h.click(lead, card, approveButton)
	failed := h.waitCard(card, "Reset failed")
	if !strings.Contains(blockText(t, failed), "audit channel") {
		t.Errorf("failed card does not blame the audit channel: %s", blockText(t, failed))
	}
	reply := h.threadReply(card, "cannot be written")
	for _, want := range []string{"<@" + analyst + ">", "audit channel", "not_in_channel"} {
		if !strings.Contains(reply.Text, want) {
			t.Errorf("thread reply lacks %q: %q", want, reply.Text)
		}
	}
	h.assertResets(aliceID, 0)
	if msgs := h.slack.Messages(lockedAudit); len(msgs) != 0 {
		t.Errorf("messages appeared in a channel the bot is not in: %+v", msgs)
	}
}

func TestApprovalsAuditLogLines(t *testing.T) {
	h := startApprovals(t)
	reason := "travel false positive, INC-4711"
	card := h.openCard(analyst, aliceEmail, reason, aliceID)
	h.click(lead, card, approveButton)
	h.waitCard(card, "Risk score reset")
	h.auditRecord("Risk reset succeeded")

	byMessage := map[string]map[string]any{}
	for _, l := range h.auditLines(cardRequestID(t, card)) {
		msg, _ := l["message"].(string)
		if _, dup := byMessage[msg]; dup {
			t.Errorf("two %q audit log lines", msg)
		}
		byMessage[msg] = l
	}
	want := map[string]map[string]string{
		"requested": {"state_from": "", "state_to": "pending", "actor": analyst},
		"approved":  {"state_from": "pending", "state_to": "executing", "actor": lead},
		"succeeded": {"state_from": "executing", "state_to": "succeeded", "actor": lead, "cf_ray": cfapitest.FakeRay},
	}
	for msg, fields := range want {
		line, ok := byMessage[msg]
		if !ok {
			t.Errorf("no %q audit log line; have %v", msg, byMessage)
			continue
		}
		fields["requester"] = analyst
		fields["target_user_id"] = aliceID
		fields["target_email"] = aliceEmail
		fields["reason"] = reason
		for k, v := range fields {
			got, present := line[k]
			if s, _ := got.(string); !present || s != v {
				t.Errorf("%q audit log line: %s = %v (present %t), want %q", msg, k, got, present, v)
			}
		}
	}
	h.assertNoDuplicateLogKeys()
}

func TestApprovalsDenyFormLosesToApproval(t *testing.T) {
	h := startApprovals(t)
	card := h.openCard(analyst, aliceEmail, "travel", aliceID)

	// lead2 opens the deny form; while it is open, lead approves.
	h.click(lead2, card, rejectButton)
	view := h.modal(denyCallback, 0)
	h.click(lead, card, approveButton)
	h.waitCard(card, "Risk score reset")
	h.auditRecord("Risk reset succeeded")

	h.submitReason(lead2, view.ID, "not a false positive")
	h.ephemeral(lead2, "already approved by <@"+lead+">")
	h.assertResets(aliceID, 1)
	if now := h.latest(card); !strings.Contains(blockText(t, now), "Risk score reset") {
		t.Errorf("a late denial changed the finished card: %s", blockText(t, now))
	}
	if n := len(h.replies(card, "Denied")); n != 0 {
		t.Errorf("%d \"Denied\" replies after the request succeeded", n)
	}
}

func TestApprovalsReasonModalRefusesStranger(t *testing.T) {
	h := startApprovals(t, withEnv("REQUIRE_REASON", "true"))

	h.command(stranger, channelOps, "alice@example.com")
	h.ephemeral(stranger, "not allowed to request risk resets")
	h.auditRecord("Refused")
	notice, err := h.slack.WaitView(h.ctx, func(v slackfake.OpenedView) bool { return v.Updates >= 1 })
	if err != nil {
		t.Fatalf("the reason form was not replaced by the refusal: %v", err)
	}
	view := string(notice.View)
	if !strings.Contains(view, "not allowed to request risk resets") || strings.Contains(view, "reason_input") {
		t.Errorf("refused requester's form still asks for a reason or lacks the refusal: %s", view)
	}
	if cards := h.cardsAbout(aliceID); len(cards) != 0 {
		t.Errorf("a card was posted for a stranger: %+v", cards)
	}
}

// An approval given by someone who has since left the approvers' group
// does not count toward the quorum when the last approval arrives.
func TestApprovalsEarlierApproverRemovedBeforeQuorum(t *testing.T) {
	h := startApprovals(t, withEnv("REQUIRED_APPROVALS", "2"), withEnv("GROUP_CACHE_TTL", "0"))
	card := h.openCard(analyst, aliceEmail, "travel false positive", aliceID)

	h.click(lead, card, approveButton)
	h.waitCard(card, "Approved by <@"+lead+"> (1 of 2)")
	h.slack.SetGroupMembers(leadsGroup, lead2)

	h.click(lead2, card, approveButton)
	h.threadReply(card, "Approval by <@"+lead+"> no longer counts")
	latest := h.waitCard(card, "Approved by <@"+lead2+"> (1 of 2)")
	if !hasButtons(latest) {
		t.Errorf("card lost its buttons although the quorum was not reached: %s", blockText(t, latest))
	}
	h.assertResets(aliceID, 0)
}
