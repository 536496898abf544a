package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"risk-reset-bot/request"
)

// Modal callback IDs and the ids of their reason inputs.
const (
	callbackReason = "risk_reset_reason"
	callbackDeny   = "risk_reset_deny"
	blockReason    = "rr_reason"
	inputReason    = "reason_input"
)

// reasonMeta travels in a reason modal's private_metadata: Slack hands it
// back on submit, so the request can be opened where it was asked for.
type reasonMeta struct {
	ChannelID   string `json:"c"`
	ResponseURL string `json:"r"`
	Target      string `json:"t"` // the target as ParseCommand accepts it
}

// denyMeta travels in a deny modal's private_metadata.
type denyMeta struct {
	RequestID   string `json:"id"`
	ResponseURL string `json:"r"`
}

// askReason opens the reason modal (the first call after the ack, while
// the trigger_id is fresh), then checks and resolves the target and shows
// it in the modal. The card is posted when the modal is submitted.
func (b *Bot) askReason(ctx context.Context, o origin, triggerID string, t Target) {
	log := b.log.With().Str("requester", o.userID).Str("channel", o.channelID).Logger()
	tell := func(text string) { b.ephemeral(ctx, log, o.responseURL, text) }
	defer b.recovered(log, tell)

	meta, _ := json.Marshal(reasonMeta{ChannelID: o.channelID, ResponseURL: o.responseURL, Target: t.token()})
	view := reasonModal(string(meta), "*User:* "+escape(t.Value)+"\n_Looking the user up…_")
	resp, err := b.api.OpenViewContext(ctx, triggerID, view)
	if err != nil {
		log.Warn().Err(err).Msg("opening the reason form failed")
		if isSlackError(err, "expired_trigger_id") || isSlackError(err, "invalid_trigger_id") || isSlackError(err, "exchanged_trigger_id") {
			tell("Slack gave me too little time to open the reason form. Run the command again, or give the reason after the user: `/risk-reset <user> <reason>`. Nothing was changed.")
			return
		}
		tell(slackProblem("open the reason form", err, b.botUser, o.channelID) + " You can give the reason after the user: `/risk-reset <user> <reason>`.")
		return
	}
	var refusal string
	target, risk, ok := b.prepare(ctx, log, o, t, func(text string) { refusal = text; tell(text) })
	if !ok {
		b.updateView(ctx, log, resp, noticeModal(refusal))
		return
	}
	summary := fmt.Sprintf("*User:* %s\n*Cloudflare user ID:* `%s`\n*Current risk:* %s",
		escape(targetLine(target)), target.UserID, escape(riskLine(risk)))
	b.updateView(ctx, log, resp, reasonModal(string(meta), summary))
}

func (b *Bot) updateView(ctx context.Context, log zerolog.Logger, open *slack.ViewResponse, view slack.ModalViewRequest) {
	if _, err := b.api.UpdateViewContext(ctx, view, "", open.Hash, open.ID); err != nil {
		log.Warn().Err(err).Msg("updating the reason form failed")
	}
}

// reasonModal asks the requester for the reason of a reset.
func reasonModal(meta, summary string) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(plain("e.g. travel false positive, INC-4711"), inputReason)
	input.Multiline = true
	input.MaxLength = maxReasonLen
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      callbackReason,
		PrivateMetadata: meta,
		Title:           plain("Risk score reset"),
		Submit:          plain("Request reset"),
		Close:           plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn(summary), nil, nil),
			slack.NewInputBlock(blockReason, plain("Reason for the reset"), plain("Recorded on the card and in the audit trail."), input),
		}},
	}
}

// denyModal lets an approver give an optional reason for a denial.
func denyModal(meta string, r *request.Request) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(plain("optional"), inputReason)
	input.Multiline = true
	input.MaxLength = maxReasonLen
	reason := slack.NewInputBlock(blockReason, plain("Why is it denied?"), nil, input)
	reason.Optional = true
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      callbackDeny,
		PrivateMetadata: meta,
		Title:           plain("Deny risk reset"),
		Submit:          plain("Deny"),
		Close:           plain("Back"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn(fmt.Sprintf("Deny <@%s>'s request to reset the risk score of *%s*?", r.Requester, escape(targetLabel(r.Target)))), nil, nil),
			reason,
		}},
	}
}

// noticeModal replaces a modal with a message and no submit button.
func noticeModal(text string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:   slack.VTModal,
		Title:  plain("Risk score reset"),
		Close:  plain("Close"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}},
	}
}

// viewSubmissionAck checks a submitted modal before it is acked; a
// non-nil result keeps the modal open with the errors shown, and nothing
// else happens.
func viewSubmissionAck(cb slack.InteractionCallback) map[string]any {
	reason := submittedReason(cb)
	var problem string
	switch {
	case utf8.RuneCountInString(reason) > maxReasonLen:
		problem = fmt.Sprintf("Keep it under %d characters.", maxReasonLen)
	case cb.View.CallbackID == callbackReason && reason == "":
		problem = "Give a reason; it goes on the card and into the audit trail."
	}
	if problem == "" {
		return nil
	}
	return map[string]any{"response_action": "errors", "errors": map[string]string{blockReason: problem}}
}

func submittedReason(cb slack.InteractionCallback) string {
	if cb.View.State == nil {
		return ""
	}
	return strings.TrimSpace(cb.View.State.Values[blockReason][inputReason].Value)
}

// handleViewSubmission opens a request from a reason modal, or records a
// denial from a deny modal.
func (b *Bot) handleViewSubmission(ctx context.Context, cb slack.InteractionCallback) {
	switch cb.View.CallbackID {
	case callbackReason:
		var meta reasonMeta
		if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta); err != nil {
			b.log.Warn().Err(err).Msg("reason form with unreadable metadata")
			return
		}
		o := origin{userID: cb.User.ID, channelID: meta.ChannelID, responseURL: meta.ResponseURL}
		t, err := parseTarget(meta.Target)
		if err != nil {
			b.ephemeral(ctx, b.log, o.responseURL, usageFor(err))
			return
		}
		b.openRequest(ctx, o, t, submittedReason(cb))
	case callbackDeny:
		var meta denyMeta
		if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta); err != nil {
			b.log.Warn().Err(err).Msg("deny form with unreadable metadata")
			return
		}
		b.handleClick(ctx, click{actor: cb.User.ID, actionID: ActionReject, requestID: meta.RequestID,
			responseURL: meta.ResponseURL, note: submittedReason(cb), confirmed: true})
	}
}

// token renders a target back into the form ParseCommand reads.
func (t Target) token() string {
	if t.Kind == TargetSlackUser {
		return "<@" + t.Value + ">"
	}
	return t.Value
}
