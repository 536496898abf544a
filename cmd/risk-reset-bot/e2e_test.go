package main

import (
	"strings"
	"testing"
)

func TestHappyPathWithApprover(t *testing.T) {
	h := newHarness(t)
	h.start()

	_, ack := h.command(analyst, channelOps, "<mailto:alice@example.com|alice@example.com> travel false positive, INC-4711")
	if len(ack.Payload) != 0 && string(ack.Payload) != "null" {
		t.Errorf("ack of a valid command carries a payload: %s", ack.Payload)
	}
	card := h.card(channelOps, aliceID)
	for _, want := range []string{"<@" + analyst + ">", aliceEmail, "Alice Example", "High (1 event)", "travel false positive, INC-4711", "risk_reset_reject", "<!subteam^" + leadsGroup + ">", "Reset risk score?"} {
		if !strings.Contains(blockText(t, card), want) {
			t.Errorf("card lacks %q: %s", want, card.Blocks)
		}
	}

	h.click(lead, card, "risk_reset_approve")
	h.waitCard(card, "Risk score reset")
	h.threadReply(card, "Done")
	h.auditRecord("Risk reset succeeded")
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
}
