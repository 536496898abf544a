package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// Action IDs of the card's buttons and callback IDs of the bot's modals,
// as the Slack contract names them.
const (
	approveButton  = "risk_reset_approve"
	rejectButton   = "risk_reset_reject"
	reasonCallback = "risk_reset_reason"
	denyCallback   = "risk_reset_deny"
)

// approvalsHarness adds the approval tests' helpers to the shared harness.
// They are methods of this type rather than of harness so that helpers
// other test files add to harness cannot collide with them.
type approvalsHarness struct{ *harness }

// startApprovals builds a harness and starts the bot.
func startApprovals(t *testing.T, opts ...harnessOption) approvalsHarness {
	t.Helper()
	h := approvalsHarness{newHarness(t, opts...)}
	h.start()
	return h
}

// withSlackOnClock replaces the fake Slack with one whose Slack-side rules
// (trigger_id expiry above all) follow clock, so a test can age a trigger
// between the command and the bot's views.open.
func withSlackOnClock(clock *fakeClock) harnessOption {
	return withSlackOptions(slackfake.WithClock(clock.Now))
}

// openCard opens a request by requester for target (an email) and waits
// until its card is posted and announced in its thread, so the request
// is fully recorded before anyone clicks.
func (h approvalsHarness) openCard(requester, target, reason, targetID string) slackfake.Message {
	h.t.Helper()
	h.command(requester, channelOps, strings.TrimSpace(target+" "+reason))
	card := h.card(channelOps, targetID)
	h.threadReply(card, "Requested by <@"+requester+">")
	return card
}

// latest returns card as Slack shows it now.
func (h approvalsHarness) latest(card slackfake.Message) slackfake.Message {
	h.t.Helper()
	for _, m := range h.slack.Messages(card.Channel) {
		if m.TS == card.TS {
			return m
		}
	}
	h.t.Fatalf("card %s/%s is gone", card.Channel, card.TS)
	return slackfake.Message{}
}

// replies returns the replies in card's thread that contain text.
func (h approvalsHarness) replies(card slackfake.Message, text string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range h.slack.Messages(card.Channel) {
		if m.ThreadTS == card.TS && strings.Contains(m.Text, text) {
			out = append(out, m)
		}
	}
	return out
}

// cardsAbout returns every card (pending or ended) outside the audit
// channel that mentions target.
func (h approvalsHarness) cardsAbout(target string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range h.slack.Messages("") {
		if m.Channel != channelAudit && m.ThreadTS == "" && strings.Contains(string(m.Blocks), "rr_summary") && strings.Contains(blockText(h.t, m), target) {
			out = append(out, m)
		}
	}
	return out
}

// auditRecords returns the audit channel's records that contain text.
func (h approvalsHarness) auditRecords(text string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range h.slack.Messages(channelAudit) {
		if strings.Contains(m.Text, text) {
			out = append(out, m)
		}
	}
	return out
}

// ephemeralsTo returns the texts of the ephemeral answers user got that
// contain text.
func (h approvalsHarness) ephemeralsTo(user, text string) []string {
	var out []string
	for _, p := range h.slack.ResponseURLPosts() {
		if p.UserID == user && p.Ephemeral && strings.Contains(p.Text, text) {
			out = append(out, p.Text)
		}
	}
	return out
}

// modal waits for a modal with callbackID that views.update has changed
// at least updates times.
func (h approvalsHarness) modal(callbackID string, updates int) slackfake.OpenedView {
	h.t.Helper()
	v, err := h.slack.WaitView(h.ctx, func(v slackfake.OpenedView) bool {
		return v.CallbackID == callbackID && v.Updates >= updates
	})
	if err != nil {
		h.t.Fatalf("no %s modal with %d updates: %v\nephemerals: %+v\nlogs:\n%s", callbackID, updates, err, h.slack.ResponseURLPosts(), h.logs.String())
	}
	return v
}

// submitReason submits the reason input of an opened modal as user and
// returns the ack.
func (h approvalsHarness) submitReason(user, viewID, reason string) slackfake.Ack {
	h.t.Helper()
	id, err := h.slack.SendViewSubmission(h.ctx, slackfake.ViewSubmission{
		UserID: user, ViewID: viewID,
		Values: map[string]map[string]string{"rr_reason": {"reason_input": reason}},
	})
	if err != nil {
		h.t.Fatalf("submitting modal %s: %v", viewID, err)
	}
	ack, err := h.slack.WaitAck(h.ctx, id)
	if err != nil {
		h.t.Fatalf("view submission not acked: %v", err)
	}
	return ack
}

// assertResets checks how many resets Cloudflare received for userID, and
// that no reset call went anywhere else.
func (h approvalsHarness) assertResets(userID string, want int) {
	h.t.Helper()
	if n := h.cf.Resets(userID); n != want {
		h.t.Errorf("resets of %s = %d, want %d", userID, n, want)
	}
	if n := h.cf.Calls(cfapitest.OpResetRisk); n != want {
		h.t.Errorf("reset calls to Cloudflare = %d, want %d", n, want)
	}
}

// assertUntouched checks that card is still the pending card it was posted
// as: not updated, buttons in place.
func (h approvalsHarness) assertUntouched(card slackfake.Message) {
	h.t.Helper()
	now := h.latest(card)
	if now.Updates != 0 || !hasButtons(now) {
		h.t.Errorf("card changed (updates=%d): %s", now.Updates, blockText(h.t, now))
	}
}

// auditLines returns the audit log lines about requestID, in order.
func (h approvalsHarness) auditLines(requestID string) []map[string]any {
	return h.logs.logLines(map[string]string{"event": "audit", "request_id": requestID})
}

// assertNoDuplicateLogKeys fails for any log line that is not one JSON
// object with distinct keys; a log store keeps only one of two equal keys,
// which can silently drop an audit field.
func (h approvalsHarness) assertNoDuplicateLogKeys() {
	h.t.Helper()
	for line := range strings.SplitSeq(h.logs.String(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		dups, err := jsonDuplicateKeys([]byte(line))
		if err != nil {
			h.t.Errorf("log line is not JSON (%v): %s", err, line)
			continue
		}
		if len(dups) > 0 {
			h.t.Errorf("log line repeats keys %q: %s", dups, line)
		}
	}
}

// jsonDuplicateKeys returns the keys that appear more than once in one
// object of the JSON value in data, at any depth.
func jsonDuplicateKeys(data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var dups []string
	if err := walkJSON(dec, &dups); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return dups, nil
}

func walkJSON(dec *json.Decoder, dups *[]string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("reading JSON: %w", err)
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return fmt.Errorf("reading a key: %w", err)
			}
			k, _ := key.(string)
			if seen[k] {
				*dups = append(*dups, k)
			}
			seen[k] = true
			if err := walkJSON(dec, dups); err != nil {
				return err
			}
		}
	case json.Delim('['):
		for dec.More() {
			if err := walkJSON(dec, dups); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("reading JSON: %w", err)
	}
	return nil
}

// hasButtons reports whether m still offers the approve button.
func hasButtons(m slackfake.Message) bool {
	return strings.Contains(string(m.Blocks), approveButton)
}

// blockTextByID returns the text of the block with blockID in m.
func blockTextByID(t *testing.T, m slackfake.Message, blockID string) string {
	t.Helper()
	var blocks []json.RawMessage
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	for _, raw := range blocks {
		var b struct {
			BlockID string `json:"block_id"`
		}
		if json.Unmarshal(raw, &b) == nil && b.BlockID == blockID {
			return blockText(t, slackfake.Message{Blocks: json.RawMessage("[" + string(raw) + "]")})
		}
	}
	t.Errorf("message has no block %q: %s", blockID, m.Blocks)
	return ""
}
