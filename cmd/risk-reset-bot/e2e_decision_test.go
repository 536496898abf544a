package main

import (
	"strings"
	"testing"
	"time"

	"risk-reset-bot/internal/slackfake"
)

// pendingCard opens a request for Alice by the analyst and waits until its
// card is fully posted.
func (h *harness) pendingCard() slackfake.Message {
	h.t.Helper()
	h.command(analyst, channelOps, "alice@example.com travel false positive")
	card := h.card(channelOps, aliceID)
	h.threadReply(card, "Requested by")
	return card
}

func TestDoubleApproveResetsOnce(t *testing.T) {
	h := newHarness(t)
	h.start()
	card := h.pendingCard()

	requestID := cardRequestID(t, card)
	var ids []string
	for _, who := range []string{lead, lead2} {
		id, err := h.slack.SendBlockAction(h.ctx, slackfake.BlockAction{UserID: who, ChannelID: card.Channel, MessageTS: card.TS, ActionID: "risk_reset_approve", Value: requestID})
		if err != nil {
			t.Fatalf("click by %s: %v", who, err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, err := h.slack.WaitAck(h.ctx, id); err != nil {
			t.Fatalf("click not acked: %v", err)
		}
	}

	done := h.waitCard(card, "Risk score reset")
	h.auditRecord("Risk reset succeeded")
	winner, loser := lead, lead2
	if strings.Contains(blockText(t, done), "approved by <@"+lead2+">") {
		winner, loser = lead2, lead
	}
	h.ephemeral(loser, "already approved by <@"+winner+">")
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d after two approvals, want 1", n)
	}
	if got := h.answersTo(winner, ""); len(got) != 0 {
		t.Errorf("the winner got ephemerals: %q", got)
	}

	// A click after the outcome is told who decided, and does nothing.
	h.click(loser, card, "risk_reset_approve")
	h.nthEphemeral(loser, "already approved by <@"+winner+">", 2)
	h.click(winner, card, "risk_reset_reject")
	h.ephemeral(winner, "already approved by <@"+winner+">")
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d after late clicks, want 1", n)
	}
	if n := len(h.slack.Messages(channelAudit)); n != 1 {
		t.Errorf("%d audit records, want 1", n)
	}
}

func TestRequesterCancels(t *testing.T) {
	h := newHarness(t)
	h.start()
	card := h.pendingCard()

	h.click(analyst, card, "risk_reset_reject")
	now := h.waitCard(card, "Cancelled by <@"+analyst+">")
	if strings.Contains(string(now.Blocks), "risk_reset_approve") {
		t.Errorf("cancelled card still has buttons: %s", now.Blocks)
	}
	h.threadReply(card, "Cancelled by <@"+analyst+">")
	record := h.auditRecord("Risk reset cancelled")
	if !strings.Contains(record.Text, aliceID) || !strings.Contains(record.Text, "travel false positive") {
		t.Errorf("audit record lacks the target or the reason: %q", record.Text)
	}

	// A late approval finds nothing to approve.
	h.click(lead, card, "risk_reset_approve")
	h.ephemeral(lead, "already cancelled by <@"+analyst+">")
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d after a cancel, want 0", n)
	}
}

// denyWithReason clicks deny as user, waits for the deny form and submits
// it with reason.
func (h *harness) denyWithReason(user string, card slackfake.Message, reason string) {
	h.t.Helper()
	h.submitDenyForm(user, h.openDenyForm(user, card), reason)
}

// openDenyForm clicks deny as user and waits for the deny form it opens.
func (h *harness) openDenyForm(user string, card slackfake.Message) slackfake.OpenedView {
	h.t.Helper()
	opened := map[string]bool{}
	for _, v := range h.slack.Views() {
		opened[v.ID] = true
	}
	h.click(user, card, "risk_reset_reject")
	form, err := h.slack.WaitView(h.ctx, func(v slackfake.OpenedView) bool { return !opened[v.ID] })
	if err != nil {
		h.t.Fatalf("no deny form for %s: %v\nlogs:\n%s", user, err, h.logs.String())
	}
	return form
}

// submitDenyForm submits an opened deny form as user with reason.
func (h *harness) submitDenyForm(user string, form slackfake.OpenedView, reason string) {
	h.t.Helper()
	id, err := h.slack.SendViewSubmission(h.ctx, slackfake.ViewSubmission{UserID: user, ViewID: form.ID,
		Values: map[string]map[string]string{"rr_reason": {"reason_input": reason}}})
	if err != nil {
		h.t.Fatalf("submitting the deny form: %v", err)
	}
	if _, err := h.slack.WaitAck(h.ctx, id); err != nil {
		h.t.Fatalf("deny form not acked: %v", err)
	}
}

func TestApproverDenies(t *testing.T) {
	h := newHarness(t)
	h.start()
	card := h.pendingCard()

	h.denyWithReason(lead2, card, "not a false positive, see INC-4712")
	h.waitCard(card, "Denied by <@"+lead2+">")
	h.threadReply(card, "Reason: not a false positive, see INC-4712")
	h.auditRecord("Risk reset denied")

	h.click(lead, card, "risk_reset_approve")
	h.ephemeral(lead, "already denied by <@"+lead2+">")
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d after a denial, want 0", n)
	}
}

// TestDenyFormLosesToApproval opens the deny form, lets another approver
// approve meanwhile, then submits the form: the approval stands.
func TestDenyFormLosesToApproval(t *testing.T) {
	h := newHarness(t)
	h.start()
	card := h.pendingCard()

	h.click(lead2, card, "risk_reset_reject")
	form, err := h.slack.WaitView(h.ctx, nil)
	if err != nil {
		t.Fatalf("no deny form: %v", err)
	}
	h.click(lead, card, "risk_reset_approve")
	h.waitCard(card, "Risk score reset")
	h.auditRecord("Risk reset succeeded")

	id, err := h.slack.SendViewSubmission(h.ctx, slackfake.ViewSubmission{UserID: lead2, ViewID: form.ID,
		Values: map[string]map[string]string{"rr_reason": {"reason_input": "too late"}}})
	if err != nil {
		t.Fatalf("submitting the deny form: %v", err)
	}
	if _, err := h.slack.WaitAck(h.ctx, id); err != nil {
		t.Fatalf("deny form not acked: %v", err)
	}
	h.ephemeral(lead2, "already approved by <@"+lead+">")
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
	if now := h.current(card); !strings.Contains(blockText(t, now), "Risk score reset") {
		t.Errorf("a late denial changed the card: %s", blockText(t, now))
	}
}

func TestUnclickedRequestExpires(t *testing.T) {
	h := newHarness(t)
	h.start()
	card := h.pendingCard()

	h.clock.Advance(31 * time.Minute)
	now := h.waitCard(card, "Expired")
	if strings.Contains(string(now.Blocks), "risk_reset_approve") {
		t.Errorf("expired card still has buttons: %s", now.Blocks)
	}
	h.threadReply(card, "Expired")
	h.auditRecord("Risk reset expired")

	h.click(lead, card, "risk_reset_approve")
	h.ephemeral(lead, "expired")
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d after expiry, want 0", n)
	}
	if n := len(h.slack.Messages(channelAudit)); n != 1 {
		t.Errorf("%d audit records, want 1 (expiry told once)", n)
	}

	// The expired request no longer blocks a new one for the same user.
	h.command(analyst, channelOps, "alice@example.com still needed")
	if _, err := h.slack.WaitMessage(h.ctx, func(m slackfake.Message) bool {
		return m.TS != card.TS && m.Channel == channelOps && m.ThreadTS == "" && strings.Contains(string(m.Blocks), "risk_reset_approve")
	}); err != nil {
		t.Fatalf("no new card after expiry: %v\nephemerals: %q", err, h.answersTo("", ""))
	}
}

// TestClickRacingExpiry clicks approve the moment the request is due,
// whether or not the sweep got there first: one decision, no reset.
func TestClickRacingExpiry(t *testing.T) {
	h := newHarness(t)
	h.start()
	card := h.pendingCard()

	h.clock.Advance(30*time.Minute + time.Second)
	h.click(lead, card, "risk_reset_approve")
	h.ephemeral(lead, "expired")
	h.waitCard(card, "Expired")
	h.auditRecord("Risk reset expired")
	h.threadReply(card, "Expired")
	// The first announcement may come from the click or from the sweep;
	// stop the bot, which lets the click's handler and the sweep finish,
	// so a second announcement has been made by now if there is one.
	h.shutdown()
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d, want 0", n)
	}
	expired := 0
	for _, m := range h.slack.Messages(card.Channel) {
		if m.ThreadTS == card.TS && strings.Contains(m.Text, "Expired") {
			expired++
		}
	}
	if expired != 1 || len(h.slack.Messages(channelAudit)) != 1 {
		t.Errorf("expiry told %d times in the thread and %d in the audit channel, want once each", expired, len(h.slack.Messages(channelAudit)))
	}
}

func TestDuplicatePendingRequest(t *testing.T) {
	h := newHarness(t)
	h.start()
	card := h.pendingCard()

	h.command(lead, channelOps, "<@U0ALICE> also travel")
	p := h.ephemeral(lead, "already a pending request")
	if !strings.Contains(p.Text, cardRequestID(t, card)) || !strings.Contains(p.Text, "/archives/"+channelOps+"/p") {
		t.Errorf("duplicate answer lacks the pending request's id or a link to its card: %q", p.Text)
	}
	if got := len(h.cards(channelOps, aliceID)); got != 1 {
		t.Errorf("%d cards for Alice, want 1", got)
	}
}

// TestDenyWithoutForm denies at once when the reason form cannot be
// opened: the click said what the approver wants.
func TestDenyWithoutForm(t *testing.T) {
	h := newHarness(t)
	h.slack.FailNext("views.open", "expired_trigger_id")
	h.start()
	card := h.pendingCard()

	h.click(lead, card, "risk_reset_reject")
	h.waitCard(card, "Denied by <@"+lead+">")
	h.auditRecord("Risk reset denied")
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d, want 0", n)
	}
}
