package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"risk-reset-bot/authz"
	"risk-reset-bot/cloudflare"
	"risk-reset-bot/internal/logging"
	"risk-reset-bot/request"
)

// origin is who asked for a request, where, and how to answer them only.
type origin struct {
	userID      string
	channelID   string
	responseURL string
}

// handleCommand runs a parsed `/risk-reset` after its ack. Without a
// reason (when one is required) it asks for one in a modal; otherwise it
// opens the request at once.
func (b *Bot) handleCommand(ctx context.Context, cmd slack.SlashCommand, parsed Command) {
	o := origin{userID: cmd.UserID, channelID: cmd.ChannelID, responseURL: cmd.ResponseURL}
	if parsed.Reason == "" && b.cfg.RequireReason {
		b.askReason(ctx, o, cmd.TriggerID, parsed.Target)
		return
	}
	b.openRequest(ctx, o, parsed.Target, parsed.Reason)
}

// openRequest authorizes the requester, resolves the target and posts the
// card.
func (b *Bot) openRequest(ctx context.Context, o origin, t Target, reason string) {
	id := uuid.NewString()
	log := logging.WithRequestID(b.log, id).With().Str("requester", o.userID).Str("channel", o.channelID).Logger()
	tell := func(text string) { b.ephemeral(ctx, log, o.responseURL, text) }
	defer b.recovered(log, tell)

	target, risk, ok := b.prepare(ctx, log, o, t, tell)
	if !ok {
		return
	}
	log = log.With().Str("target_user_id", target.UserID).Str("target_email", target.Email).Logger()
	req := request.New(request.Draft{
		ID: id, Requester: o.userID, ChannelID: o.channelID,
		Target: target, Risk: risk, Reason: reason,
		RequiredApprovals: b.requiredApprovals(),
	}, b.now(), b.cfg.RequestTTL)
	if err := b.create(ctx, req); err != nil {
		b.tellCreateFailed(ctx, log, err, tell)
		return
	}
	b.postCard(ctx, log, req, tell)
}

// prepare runs the checks a request passes before it gets a card: the
// requester may request here, the target resolves to a Cloudflare user, and
// the requester is not that user. On failure the requester has been told
// why and ok is false.
func (b *Bot) prepare(ctx context.Context, log zerolog.Logger, o origin, t Target, tell func(string)) (request.Target, request.Risk, bool) {
	if err := b.policy.CanRequest(ctx, o.userID, o.channelID); err != nil {
		b.refuseCommand(ctx, log, o, err, tell)
		return request.Target{}, request.Risk{}, false
	}
	target, risk, err := b.resolve(ctx, t)
	if err != nil {
		log.Info().Err(err).Str("event", "command_failed").Msg("target not resolved")
		b.countCommand("unresolved")
		tell(resolveMessage(err))
		return request.Target{}, request.Risk{}, false
	}
	if err := b.checkNotTarget(ctx, o.userID, target); err != nil {
		b.refuseCommand(ctx, log, o, err, tell)
		return request.Target{}, request.Risk{}, false
	}
	return target, risk, true
}

// checkNotTarget refuses when actor is the target, comparing actor's Slack
// email with the target's Cloudflare email.
func (b *Bot) checkNotTarget(ctx context.Context, actor string, target request.Target) error {
	email, err := b.slackEmail(ctx, actor)
	var su *slackUserError
	if errors.As(err, &su) && su.err != nil && !isSlackError(su.err, "missing_scope") {
		return fmt.Errorf("reading the email of %s: %w", actor, err)
	}
	// No email or no scope: CheckNotTarget refuses and says why.
	return authz.CheckNotTarget(email, target.Email)
}

// create stores req. A pending request for the same target that is past
// its expiry but not yet swept is expired first, so it does not block the
// new one.
func (b *Bot) create(ctx context.Context, req *request.Request) error {
	err := b.store.Create(ctx, req)
	dup, ok := errors.AsType[*request.DuplicateError](err)
	if !ok || b.now().Before(dup.Existing.ExpiresAt) {
		return err
	}
	b.expire(ctx, dup.Existing.ID)
	return b.store.Create(ctx, req)
}

func (b *Bot) requiredApprovals() int {
	if b.policy.RequiresApprover() {
		return max(b.cfg.RequiredApprovals, 1)
	}
	return 0
}

// refuseCommand tells a refused requester why, and records the refusal.
func (b *Bot) refuseCommand(ctx context.Context, log zerolog.Logger, o origin, err error, tell func(string)) {
	denied, ok := authz.IsDenied(err)
	if !ok {
		b.countCommand("failed")
		log.Error().Err(err).Msg("could not check the requester's permission")
		tell(checkFailedText)
		return
	}
	b.countCommand("denied")
	log.Warn().Str("event", "audit").Str("action", "command_denied").Str("actor", o.userID).
		Str("refusal", string(denied.Reason)).Msg("risk reset request refused")
	tell(":no_entry: " + capitalize(denied.Message))
	b.auditRefusal(ctx, log, "`/risk-reset`", o.userID, " in <#"+o.channelID+">", denied.Message, "")
}

// tellCreateFailed answers a request that could not be stored: a
// duplicate gets a link to the pending card.
func (b *Bot) tellCreateFailed(ctx context.Context, log zerolog.Logger, err error, tell func(string)) {
	dup, ok := errors.AsType[*request.DuplicateError](err)
	if !ok {
		b.countCommand("failed")
		log.Error().Err(err).Msg("storing the request failed")
		tell(storeUnavailableText)
		return
	}
	b.countCommand("duplicate")
	link := b.permalink(ctx, log, dup.Existing.ChannelID, dup.Existing.CardTS)
	log.Info().Str("existing_request_id", dup.Existing.ID).Msg("duplicate pending request")
	text := fmt.Sprintf("There is already a pending request (`%s`) to reset *%s*, opened by <@%s>", dup.Existing.ID, escape(targetLabel(dup.Existing.Target)), dup.Existing.Requester)
	if link != "" {
		text += ": " + link
	}
	tell(text + ". Approve or cancel that one instead.")
}

// postCard posts the confirmation card and records its ts; a card that
// cannot be posted ends the request, and the requester is told why.
func (b *Bot) postCard(ctx context.Context, log zerolog.Logger, req *request.Request, tell func(string)) {
	ts, err := b.postMessage(ctx, req.ChannelID,
		slack.MsgOptionText(cardText(req), true),
		slack.MsgOptionBlocks(cardBlocks(req, b.cardView(req))...))
	// The post may have used up the handler's time (a burst waits out
	// Slack's rate limit), and with Redis a write on an ended context
	// fails at once; what the post left to record is written regardless.
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	if err != nil {
		log.Error().Err(err).Msg("posting the card failed")
		b.countCommand("card_failed")
		b.abandon(bctx, log, req, "the confirmation card could not be posted")
		tell(slackProblem("post the confirmation card here", err, b.botUser, req.ChannelID))
		return
	}
	b.countCommand("card_posted")
	if _, err := b.store.Update(bctx, req.ID, func(r *request.Request) error { r.CardTS = ts; return nil }); err != nil {
		log.Error().Err(err).Msg("recording the card failed")
	}
	req.CardTS = ts
	b.auditLog(req, "", req.Requester, "requested")
	b.threadReply(ctx, log, req, fmt.Sprintf("Requested by <@%s>. %s", req.Requester, escape(approverHint(req))))
}

// bookkeepingTimeout bounds a store write that must not be lost with the
// handler's context: without it a request stays pending with no card and
// blocks its target until it expires, or a card keeps its buttons.
const bookkeepingTimeout = 10 * time.Second

// bookkeeping returns a context for such a write: ctx's values, not its
// end.
func bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
}

func (b *Bot) countCommand(result string) { b.metrics.Commands.WithLabelValues(result).Inc() }

// abandon ends a request that never reached its card, so it does not
// block the target as a phantom pending request.
func (b *Bot) abandon(ctx context.Context, log zerolog.Logger, req *request.Request, why string) {
	ended, err := b.store.Update(ctx, req.ID, func(r *request.Request) error { return r.Abort(why, b.now()) })
	if err != nil {
		log.Error().Err(err).Msg("ending the abandoned request failed")
		return
	}
	b.auditLog(ended, request.StatePending, req.Requester, "abandoned: "+why)
}

func approverHint(r *request.Request) string {
	switch {
	case r.SelfConfirm():
		return "Waiting for the requester to confirm."
	case r.RequiredApprovals > 1:
		return fmt.Sprintf("Waiting for %d approvers.", r.RequiredApprovals)
	}
	return "Waiting for an approver."
}

// resolve turns a parsed target into a Cloudflare user and its current
// risk. A token that cannot read risk details is noted, not fatal.
func (b *Bot) resolve(ctx context.Context, t Target) (request.Target, request.Risk, error) {
	if t.Kind == TargetUUID {
		return b.readRisk(ctx, request.Target{UserID: t.Value})
	}
	email := t.Value
	if t.Kind == TargetSlackUser {
		var err error
		if email, err = b.slackEmail(ctx, t.Value); err != nil {
			return request.Target{}, request.Risk{}, err
		}
	}
	u, err := b.cf.FindUserByEmail(ctx, email)
	if err != nil {
		return request.Target{}, request.Risk{}, &resolveError{what: email, err: err}
	}
	return b.readRisk(ctx, request.Target{UserID: u.ID, Email: u.Email, Name: u.Name})
}

func (b *Bot) readRisk(ctx context.Context, t request.Target) (request.Target, request.Risk, error) {
	risk, err := b.cf.GetUserRisk(ctx, t.UserID)
	if err != nil {
		if perm, ok := errors.AsType[*cloudflare.PermissionError](err); ok {
			return t, request.Risk{Unavailable: "the Cloudflare token lacks " + perm.Permission}, nil
		}
		return request.Target{}, request.Risk{}, &resolveError{what: t.UserID, err: err}
	}
	if t.Email == "" {
		t.Email = risk.Email
	}
	if t.Name == "" {
		t.Name = risk.Name
	}
	return t, request.Risk{Level: risk.RiskLevel, Events: len(risk.Events)}, nil
}

// slackEmail reads a Slack user's email through users.info.
func (b *Bot) slackEmail(ctx context.Context, userID string) (string, error) {
	u, err := b.api.GetUserInfoContext(ctx, userID)
	if err != nil {
		return "", &slackUserError{userID: userID, err: err}
	}
	if u.Deleted || u.IsBot || u.Profile.Email == "" {
		return "", &slackUserError{userID: userID, noEmail: true, bot: u.IsBot}
	}
	return strings.ToLower(u.Profile.Email), nil
}

type resolveError struct {
	what string
	err  error
}

func (e *resolveError) Error() string { return "resolving " + e.what + ": " + e.err.Error() }
func (e *resolveError) Unwrap() error { return e.err }

type slackUserError struct {
	userID  string
	noEmail bool
	bot     bool
	err     error
}

func (e *slackUserError) Error() string {
	if e.err != nil {
		return "users.info " + e.userID + ": " + e.err.Error()
	}
	return "users.info " + e.userID + ": no email"
}
func (e *slackUserError) Unwrap() error { return e.err }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
