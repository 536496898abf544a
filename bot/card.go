package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"risk-reset-bot/request"
)

// Action IDs of the card's buttons: a contract with Slack and the tests.
const (
	ActionApprove = "risk_reset_approve"
	ActionReject  = "risk_reset_reject"
)

// Block IDs let a test or a later update find the card's parts.
const (
	blockSummary = "rr_summary"
	blockDetails = "rr_details"
	blockStatus  = "rr_status"
	blockActions = "rr_actions"
)

// cardView is what a card shows beyond the request itself.
type cardView struct {
	approvers string // who may approve, as mrkdwn
	status    string // replaces the buttons once the request left pending
}

// cardBlocks renders the confirmation card for r.
func cardBlocks(r *request.Request, v cardView) []slack.Block {
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(fmt.Sprintf("<@%s> asks to reset the Cloudflare Zero Trust risk score of *%s*.",
			r.Requester, escape(targetLabel(r.Target)))), nil, nil, slack.SectionBlockOptionBlockID(blockSummary)),
		slack.NewSectionBlock(nil, []*slack.TextBlockObject{
			mrkdwn("*User*\n" + escape(targetLine(r.Target))),
			mrkdwn("*Cloudflare user ID*\n`" + r.Target.UserID + "`"),
			mrkdwn("*Current risk*\n" + escape(riskLine(r.Risk))),
			mrkdwn("*Reason*\n" + escape(orNone(r.Reason))),
			mrkdwn("*Request ID*\n`" + r.ID + "`"),
			mrkdwn("*Expires*\n" + slackDate(r.ExpiresAt)),
		}, nil, slack.SectionBlockOptionBlockID(blockDetails)),
	}
	if len(r.Approvals) > 0 {
		blocks = append(blocks, slack.NewContextBlock("rr_approvals", mrkdwn(approvalsLine(r))))
	}
	if r.State == request.StatePending {
		return append(blocks,
			slack.NewContextBlock("rr_policy", mrkdwn(v.approvers)),
			slack.NewActionBlock(blockActions, approveButton(r), rejectButton(r)))
	}
	return append(blocks, slack.NewSectionBlock(mrkdwn(v.status), nil, nil, slack.SectionBlockOptionBlockID(blockStatus)))
}

func approveButton(r *request.Request) *slack.ButtonBlockElement {
	label := "Approve reset"
	if r.SelfConfirm() {
		label = "Confirm reset"
	}
	b := slack.NewButtonBlockElement(ActionApprove, r.ID, plain(label))
	b.Style = slack.StylePrimary
	b.Confirm = slack.NewConfirmationBlockObject(
		plain("Reset risk score?"),
		mrkdwn(fmt.Sprintf("This clears the Cloudflare Zero Trust risk score of *%s* now.", escape(targetLabel(r.Target)))),
		plain("Reset"), plain("Not now"))
	return b
}

func rejectButton(r *request.Request) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(ActionReject, r.ID, plain("Cancel / deny"))
	b.Style = slack.StyleDanger
	return b
}

// cardText is the notification and screen-reader text of the card.
func cardText(r *request.Request) string {
	return fmt.Sprintf("Risk reset request for %s (%s)", targetLabel(r.Target), r.State)
}

func targetLabel(t request.Target) string {
	switch {
	case t.Email != "":
		return t.Email
	case t.Name != "":
		return t.Name
	}
	return t.UserID
}

func targetLine(t request.Target) string {
	switch {
	case t.Name != "" && t.Email != "":
		return t.Name + " <" + t.Email + ">"
	case t.Email != "":
		return t.Email
	case t.Name != "":
		return t.Name
	}
	return "(name and email unavailable)"
}

func riskLine(r request.Risk) string {
	if r.Unavailable != "" {
		return "unavailable: " + r.Unavailable
	}
	level := r.Level
	if level == "" {
		level = "none"
	}
	events := "events"
	if r.Events == 1 {
		events = "event"
	}
	return fmt.Sprintf("%s (%d %s)", strings.ToUpper(level[:1])+level[1:], r.Events, events)
}

func approvalsLine(r *request.Request) string {
	names := make([]string, len(r.Approvals))
	for i, a := range r.Approvals {
		names[i] = "<@" + a.By + ">"
	}
	return fmt.Sprintf("Approved by %s (%d of %d)", strings.Join(names, ", "), len(r.Approvals), max(r.RequiredApprovals, 1))
}

func orNone(s string) string {
	if s == "" {
		return "(none given)"
	}
	return s
}

// slackDate renders t in each reader's own time zone, with a UTC fallback
// for clients that cannot.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// escape neutralises mrkdwn control characters in text that came from
// people or from Cloudflare, so a reason cannot ping @channel or forge a
// link.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}
func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}
