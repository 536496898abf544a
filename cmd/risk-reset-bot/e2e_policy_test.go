package main

import (
	"strings"
	"testing"
)

func TestStrangerCannotRequest(t *testing.T) {
	h := newHarness(t)
	h.start()

	h.command(stranger, channelOps, "alice@example.com please")
	h.ephemeral(stranger, "not allowed to request risk resets")
	record := h.auditRecord("Refused")
	if !strings.Contains(record.Text, "<@"+stranger+">") {
		t.Errorf("audit record does not name who was refused: %q", record.Text)
	}
	lines := h.logs.logLines(map[string]string{"event": "audit", "action": "command_denied", "actor": stranger})
	if len(lines) != 1 {
		t.Errorf("%d command_denied audit log lines for the stranger, want 1", len(lines))
	}
	h.assertNoCard()
	if n := h.cfSrv.RequestCount(); n != 0 {
		t.Errorf("Cloudflare got %d requests for a refused command, want 0:\n%s", n, h.cloudflareTraffic())
	}
}

func TestCommandOutsideAllowedChannels(t *testing.T) {
	h := newHarness(t, withEnv("ALLOWED_CHANNEL_IDS", channelOps))
	h.start()

	h.command(analyst, channelOther, "alice@example.com travel")
	h.ephemeral(analyst, "cannot be used in this channel; use <#"+channelOps+">")
	h.auditRecord("Refused")
	h.assertNoCard()
	if msgs := h.slack.Messages(channelOther); len(msgs) != 0 {
		t.Errorf("something was posted in the channel the command came from: %+v", msgs)
	}
	if n := h.cfSrv.RequestCount(); n != 0 {
		t.Errorf("Cloudflare got %d requests for a refused command, want 0", n)
	}
}

func TestStrangerCannotApproveOrDeny(t *testing.T) {
	h := newHarness(t)
	h.start()

	h.command(analyst, channelOps, "alice@example.com travel")
	card := h.card(channelOps, aliceID)
	h.threadReply(card, "Requested by")

	h.click(stranger, card, "risk_reset_approve")
	h.ephemeral(stranger, "not an approver")
	h.click(stranger, card, "risk_reset_reject")
	h.ephemeral(stranger, "requester or an approver can reject")
	// Clicking the same button again is refused again, but the audit
	// channel already has it: its one post a second is for outcomes.
	h.click(stranger, card, "risk_reset_approve")
	h.nthEphemeral(stranger, "not an approver", 2)

	now := h.current(card)
	if now.Updates != 0 || !strings.Contains(string(now.Blocks), "risk_reset_approve") {
		t.Errorf("refused clicks changed the card (updates=%d): %s", now.Updates, now.Blocks)
	}
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d after a refused click, want 0", n)
	}
	if lines := h.logs.logLines(map[string]string{"event": "audit", "action": "click_denied", "actor": stranger}); len(lines) != 3 {
		t.Errorf("%d click_denied audit log lines, want 3", len(lines))
	}
	// Each refused click is on record in the audit channel: who, which
	// request, why, and where the card is.
	requestID := cardRequestID(t, card)
	for _, why := range []string{"not an approver", "requester or an approver can reject"} {
		record := h.auditRecord(why)
		for _, want := range []string{"Refused", "<@" + stranger + ">", requestID, "/archives/" + channelOps + "/p"} {
			if !strings.Contains(record.Text, want) {
				t.Errorf("refused click's audit record lacks %q: %q", want, record.Text)
			}
		}
	}

	// The card is still live for a real approver.
	h.click(lead, card, "risk_reset_approve")
	h.waitCard(card, "Risk score reset")
	h.auditRecord("Risk reset succeeded")
	h.shutdown()
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
	if n := len(auditRecordsWith(h, "Refused")); n != 2 {
		t.Errorf("%d refusal records in the audit channel, want 2 (one per refused button)", n)
	}
}

// auditRecordsWith returns the audit channel's records that contain text.
func auditRecordsWith(h *harness, text string) []string {
	var out []string
	for _, m := range h.slack.Messages(channelAudit) {
		if strings.Contains(m.Text, text) {
			out = append(out, m.Text)
		}
	}
	return out
}

func TestRequesterCannotApproveOwnRequest(t *testing.T) {
	h := newHarness(t)
	h.start()

	// The lead is both a requester and an approver.
	h.command(lead, channelOps, "alice@example.com travel")
	card := h.card(channelOps, aliceID)
	h.threadReply(card, "Requested by")
	if strings.Contains(blockText(t, card), "<@"+lead+"> confirms") {
		t.Errorf("card offers self-confirmation although approvers are configured: %s", blockText(t, card))
	}

	h.click(lead, card, "risk_reset_approve")
	h.ephemeral(lead, "cannot approve your own request")
	if record := h.auditRecord("Refused"); !strings.Contains(record.Text, "<@"+lead+">") || !strings.Contains(record.Text, "cannot approve your own request") {
		t.Errorf("the refused self-approval's audit record does not say who and why: %q", record.Text)
	}
	if now := h.current(card); now.Updates != 0 {
		t.Errorf("a refused self-approval changed the card: %s", now.Blocks)
	}
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d after a self-approval, want 0", n)
	}

	// Another lead may.
	h.click(lead2, card, "risk_reset_approve")
	h.waitCard(card, "approved by <@"+lead2+">")
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
}

func TestSelfConfirmMode(t *testing.T) {
	h := newHarness(t, withEnv("APPROVER_IDS", ""))
	h.start()

	h.command(analyst, channelOps, "alice@example.com travel")
	card := h.card(channelOps, aliceID)
	h.threadReply(card, "Waiting for the requester to confirm")
	for _, want := range []string{"Confirm reset", "<@" + analyst + "> confirms this reset"} {
		if !strings.Contains(blockText(t, card), want) {
			t.Errorf("self-confirm card lacks %q: %s", want, blockText(t, card))
		}
	}

	// The other requester may not confirm someone else's request, nor cancel it.
	h.click(lead, card, "risk_reset_approve")
	h.ephemeral(lead, "<@"+analyst+">, who asked for this reset, can confirm it")
	h.click(lead, card, "risk_reset_reject")
	h.ephemeral(lead, "can cancel it")
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d after someone else's confirm, want 0", n)
	}

	h.click(analyst, card, "risk_reset_approve")
	h.waitCard(card, "Risk score reset")
	h.threadReply(card, "Done")
	h.auditRecord("Risk reset succeeded")
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
}

// TestGroupLookupFailureRefusesClick: when Slack cannot say who is in the
// approvers' group, nobody is let through, and a later click works.
func TestGroupLookupFailureRefusesClick(t *testing.T) {
	h := newHarness(t)
	h.slack.FailNext("usergroups.users.list", "internal_error")
	h.start()
	card := h.pendingCard()

	h.click(lead, card, "risk_reset_approve")
	h.ephemeral(lead, "could not check your permission")
	if now := h.current(card); now.Updates != 0 {
		t.Errorf("a click that could not be authorized changed the card: %s", now.Blocks)
	}
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d, want 0", n)
	}

	h.click(lead, card, "risk_reset_approve")
	h.waitCard(card, "Risk score reset")
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
}

// TestRequesterCannotConfirmAfterApproversRemoved: a request opened while
// approvers were configured keeps needing an approver other than its
// requester after a restart without APPROVER_IDS. The stored request says
// so, whatever the configuration now: the requester cannot confirm it,
// nobody can approve it, and the requester can still cancel it.
func TestRequesterCannotConfirmAfterApproversRemoved(t *testing.T) {
	h := newHarness(t, withRedis(t))
	a := h.startReplica()
	card := h.requestVia(a, analyst, aliceEmail, aliceID)
	h.threadReply(card, "Waiting for an approver")
	a.shutdown()

	h.env["APPROVER_IDS"] = ""
	b := h.startReplica()
	h.clickVia(b, analyst, card, "risk_reset_approve")
	h.ephemeral(analyst, "no approvers are configured now")
	h.clickVia(b, lead, card, "risk_reset_approve")
	h.ephemeral(lead, "no approvers are configured now")
	if now := h.current(card); now.Updates != 0 || !hasButtons(now) {
		t.Errorf("refused approvals changed the card (updates=%d): %s", now.Updates, blockText(t, now))
	}
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Fatalf("resets = %d: a request needing an independent approver was reset without one", n)
	}

	h.clickVia(b, analyst, card, "risk_reset_reject")
	h.waitCard(card, "Cancelled by <@"+analyst+">")
	if n := h.cf.Resets(aliceID); n != 0 {
		t.Errorf("resets = %d, want 0", n)
	}
}
