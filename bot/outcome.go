package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"risk-reset-bot/cloudflare"
	"risk-reset-bot/request"
)

// Answers for failures a person cannot fix but can retry.
const (
	storeUnavailableText = ":warning: Risk reset is temporarily unavailable (its request store failed). Nothing was changed."
	checkFailedText      = ":warning: I could not check your permission (a Slack lookup failed). Nothing was changed; try again in a minute."
)

// outcomeOf turns the Cloudflare client's answer into the outcome stored
// with the request.
func outcomeOf(res *cloudflare.ResetResult, err error, now time.Time) request.Outcome {
	o := request.Outcome{At: now}
	if err == nil {
		o.Verified = res.Verified
		o.CFRay = res.CFRay
		switch {
		case res.Ambiguous:
			o.Detail = "Cloudflare's answer was unclear, so the bot read the user back: the reset is in place."
		case !res.Verified:
			o.Detail = "Cloudflare accepted the reset, but " + unverifiedWhy(res.VerifyErr)
		}
		return o
	}
	o.Detail = cloudflareProblem(err, "the reset")
	if apiErr, ok := errors.AsType[*cloudflare.APIError](err); ok {
		o.HTTP, o.CFRay = apiErr.StatusCode, apiErr.CFRay
		if len(apiErr.Errors) > 0 {
			o.Code = apiErr.Errors[0].Code
		}
	}
	if bodyErr, ok := errors.AsType[*cloudflare.BodyError](err); ok {
		o.HTTP, o.CFRay = bodyErr.StatusCode, bodyErr.CFRay
	}
	return o
}

// unverifiedWhy says why an accepted reset could not be confirmed.
func unverifiedWhy(err error) string {
	if _, ok := errors.AsType[*cloudflare.PermissionError](err); ok {
		return "it could not be read back (the token lacks Zero Trust PII Read)."
	}
	switch {
	case err == nil:
		return "it could not be read back."
	case errors.Is(err, cloudflare.ErrResetNotVisible):
		return "reading the user back still shows the previous reset time; check the user in Cloudflare."
	}
	return "reading the user back failed (" + cloudflareProblem(err, "the read-back") + ")"
}

// cloudflareProblem says in plain words what went wrong with Cloudflare.
// It is built from typed errors only, so no header or secret can leak in.
func cloudflareProblem(err error, what string) string {
	// What is known of the reset's fate comes first: that is what people
	// act on. The HTTP details follow from the wrapped *APIError.
	switch {
	case errors.Is(err, cloudflare.ErrResetUnconfirmed):
		return "Cloudflare did not answer the reset in time" + statusNote(err) + ", and the user does not show it yet; Cloudflare may still apply it. Check the user's risk score in the Cloudflare dashboard before asking again."
	case errors.Is(err, cloudflare.ErrLookupIncomplete):
		return "Cloudflare has more users matching that email than the bot reads, so the lookup could not be completed. Use the Cloudflare user ID instead."
	case errors.Is(err, cloudflare.ErrResetOutcomeUnknown):
		return "Cloudflare failed" + statusNote(err) + " and the bot could not read the user back, so it is unknown whether the risk score was reset. Check the user in the Cloudflare dashboard before asking again."
	case errors.Is(err, cloudflare.ErrResetNotApplied):
		return "Cloudflare failed" + statusNote(err) + "; the bot read the user back and the reset was not applied, so nothing was changed. Try again in a few minutes."
	case errors.Is(err, cloudflare.ErrNotSent):
		return "Cloudflare could not be reached (the connection failed before the request was sent), so nothing was changed. Try again in a few minutes."
	}
	if perm, ok := errors.AsType[*cloudflare.PermissionError](err); ok {
		return fmt.Sprintf("the Cloudflare API token lacks the %q permission%s. Add it to the token and try again.", perm.Permission, rayNote(perm.Err))
	}
	if rl, ok := errors.AsType[*cloudflare.RateLimitError](err); ok {
		return "Cloudflare kept rate-limiting the bot (HTTP 429)" + rayNote(rl.Err) + "; nothing was changed. Try again in a few minutes."
	}
	if apiErr, ok := errors.AsType[*cloudflare.APIError](err); ok {
		return fmt.Sprintf("Cloudflare refused %s (HTTP %d: %s)%s.", what, apiErr.StatusCode, apiErrorList(apiErr), rayNote(apiErr))
	}
	if bodyErr, ok := errors.AsType[*cloudflare.BodyError](err); ok {
		ray := ""
		if bodyErr.CFRay != "" {
			ray = ", cf-ray " + bodyErr.CFRay
		}
		return fmt.Sprintf("Cloudflare sent an unreadable answer (HTTP %d, %s%s).", bodyErr.StatusCode, bodyErr.Reason, ray)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "the call to Cloudflare timed out, so " + what + " could not be confirmed."
	}
	if errors.Is(err, cloudflare.ErrInvalidUserID) {
		return "the Cloudflare user ID is not valid."
	}
	return "Cloudflare could not be reached or did not confirm " + what + "."
}

// statusNote describes the HTTP answer behind err, if there was one.
func statusNote(err error) string {
	if apiErr, ok := errors.AsType[*cloudflare.APIError](err); ok {
		return fmt.Sprintf(" (HTTP %d: %s%s)", apiErr.StatusCode, apiErrorList(apiErr), rayNote(apiErr))
	}
	if bodyErr, ok := errors.AsType[*cloudflare.BodyError](err); ok {
		ray := ""
		if bodyErr.CFRay != "" {
			ray = ", cf-ray " + bodyErr.CFRay
		}
		return fmt.Sprintf(" (HTTP %d, %s%s)", bodyErr.StatusCode, bodyErr.Reason, ray)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return " (timed out)"
	}
	return " (no answer)"
}

func apiErrorList(e *cloudflare.APIError) string {
	if len(e.Errors) == 0 {
		return "no error details"
	}
	parts := make([]string, len(e.Errors))
	for i, d := range e.Errors {
		parts[i] = fmt.Sprintf("code %d, %s", d.Code, d.Message)
	}
	return strings.Join(parts, "; ")
}

func rayNote(e *cloudflare.APIError) string {
	if e == nil || e.CFRay == "" {
		return ""
	}
	return " (cf-ray " + e.CFRay + ")"
}

// resolveMessage tells a requester why their target could not be found.
func resolveMessage(err error) string {
	var su *slackUserError
	if errors.As(err, &su) {
		switch {
		case su.err != nil && isSlackError(su.err, "missing_scope"):
			return ":warning: I cannot read Slack users (the app lacks the `users:read` / `users:read.email` scope). Reinstall the app from manifest.yml. Nothing was changed."
		case su.err != nil && isSlackError(su.err, "user_not_found"):
			return "I could not find that Slack user. Nothing was changed."
		case su.err != nil:
			return ":warning: Slack did not answer the user lookup; try again in a minute. Nothing was changed."
		case su.bot:
			return fmt.Sprintf("<@%s> is a bot; bots have no Zero Trust risk score. Nothing was changed.", su.userID)
		}
		return fmt.Sprintf("I cannot read the email of <@%s> (the app needs the `users:read.email` scope, and the user must have an email). Use their email address instead. Nothing was changed.", su.userID)
	}
	var re *resolveError
	if !errors.As(err, &re) {
		return ":warning: The user could not be looked up. Nothing was changed."
	}
	what := escape(re.what)
	if amb, ok := errors.AsType[*cloudflare.AmbiguousUserError](err); ok {
		return fmt.Sprintf("%d Cloudflare Zero Trust users match %s; use the Cloudflare user ID instead. Nothing was changed.", amb.Matches, what)
	}
	if errors.Is(err, cloudflare.ErrUserNotFound) {
		return fmt.Sprintf("No Cloudflare Zero Trust user matches %s. Check the address, or use the Cloudflare user ID. Nothing was changed.", what)
	}
	if apiErr, ok := errors.AsType[*cloudflare.APIError](err); ok && apiErr.StatusCode == 404 {
		return fmt.Sprintf("Cloudflare has no risk-scoring record for user `%s`. Nothing was changed.", what)
	}
	return "I could not look up " + what + ": " + escape(cloudflareProblem(err, "the lookup")) + " Nothing was changed."
}

// slackProblem says in plain words what a person can do about a failed
// Slack call.
func slackProblem(doing string, err error, botUser, channelID string) string {
	bot := "the bot"
	if botUser != "" {
		bot = "<@" + botUser + ">"
	}
	switch {
	case isSlackError(err, "not_in_channel"), isSlackError(err, "channel_not_found"):
		return fmt.Sprintf(":warning: I could not %s: I am not a member of <#%s>. Invite %s (`/invite %s`) or use a channel it is in. Nothing was changed.", doing, channelID, bot, bot)
	case isSlackError(err, "is_archived"):
		return fmt.Sprintf(":warning: I could not %s: the channel is archived. Nothing was changed.", doing)
	case isSlackError(err, "missing_scope"):
		return fmt.Sprintf(":warning: I could not %s: the Slack app is missing a permission scope. Reinstall it from manifest.yml. Nothing was changed.", doing)
	}
	return fmt.Sprintf(":warning: I could not %s: Slack answered with an error (%s). Nothing was changed.", doing, slackErrorCode(err))
}

func isSlackError(err error, code string) bool { return slackErrorCode(err) == code }

func slackErrorCode(err error) string {
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		return se.Err
	}
	if _, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		return "rate_limited"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "unavailable"
}

// statusText is the card's closing line for a request that left pending.
func statusText(r *request.Request) string {
	switch r.State {
	case request.StateExecuting:
		return fmt.Sprintf(":hourglass_flowing_sand: Approved by <@%s>; resetting…", r.DecidedBy)
	case request.StateSucceeded:
		return fmt.Sprintf(":white_check_mark: Risk score reset (approved by <@%s>, %s).", r.DecidedBy, verifiedWord(r.Outcome))
	case request.StateFailed:
		return ":x: Reset failed: " + escape(detail(r.Outcome))
	case request.StateCancelled:
		return fmt.Sprintf(":no_entry_sign: Cancelled by <@%s>; nothing was changed.", r.DecidedBy)
	case request.StateDenied:
		return fmt.Sprintf(":no_entry: Denied by <@%s>; nothing was changed.", r.DecidedBy)
	case request.StateExpired:
		return ":hourglass: Expired; nothing was changed."
	}
	return ""
}

// outcomeText is the thread reply for a terminal state.
func outcomeText(r *request.Request) string {
	switch r.State {
	case request.StateSucceeded:
		text := fmt.Sprintf(":white_check_mark: Done: the risk score of *%s* was reset (%s).", escape(targetLabel(r.Target)), verifiedWord(r.Outcome))
		if d := detail(r.Outcome); d != "" {
			text += " " + escape(d)
		}
		return text + rayText(r.Outcome)
	case request.StateFailed:
		return fmt.Sprintf(":x: <@%s> the reset failed: %s", r.Requester, escape(detail(r.Outcome)))
	case request.StateDenied:
		text := fmt.Sprintf(":no_entry: Denied by <@%s>; nothing was changed.", r.DecidedBy)
		if r.Note != "" {
			text += " Reason: " + escape(r.Note)
		}
		return text
	}
	return statusText(r)
}

func verifiedWord(o *request.Outcome) string {
	if o != nil && o.Verified {
		return "verified"
	}
	return "not verified"
}

func detail(o *request.Outcome) string {
	if o == nil {
		return ""
	}
	return o.Detail
}

func rayText(o *request.Outcome) string {
	if o == nil || o.CFRay == "" {
		return ""
	}
	return " (cf-ray " + o.CFRay + ")"
}

// auditText is the audit channel's record of a terminal outcome.
func auditText(r *request.Request, outcome, link string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "*Risk reset %s* · request `%s`\n", r.State, r.ID)
	fmt.Fprintf(&sb, "Target: %s (`%s`)\nRequested by <@%s> in <#%s>\nReason: %s\n", escape(targetLine(r.Target)), r.Target.UserID, r.Requester, r.ChannelID, escape(orNone(r.Reason)))
	if len(r.Approvals) > 0 {
		sb.WriteString(approvalsLine(r) + "\n")
	}
	sb.WriteString("Outcome: " + outcome)
	if link != "" {
		sb.WriteString("\nThread: " + link)
	}
	return sb.String()
}

func joinOr(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
