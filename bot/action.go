package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"risk-reset-bot/authz"
	"risk-reset-bot/internal/logging"
	"risk-reset-bot/internal/metrics"
	"risk-reset-bot/request"
)

// click is one button press, reduced to what the lifecycle needs.
type click struct {
	actor       string
	actionID    string
	requestID   string
	channelID   string
	messageTS   string
	responseURL string
	triggerID   string
	note        string // reason given with a denial
	confirmed   bool   // the deny modal was submitted; do not ask again
}

// handleBlockActions handles the card's buttons; other actions are ignored.
func (b *Bot) handleBlockActions(ctx context.Context, cb slack.InteractionCallback) {
	for _, a := range cb.ActionCallback.BlockActions {
		if a.ActionID != ActionApprove && a.ActionID != ActionReject {
			continue
		}
		b.handleClick(ctx, click{
			actor: cb.User.ID, actionID: a.ActionID, requestID: a.Value,
			channelID: cb.Channel.ID, messageTS: cb.Container.MessageTs, responseURL: cb.ResponseURL,
			triggerID: cb.TriggerID,
		})
	}
}

func (b *Bot) handleClick(ctx context.Context, c click) {
	log := logging.WithRequestID(b.log, c.requestID).With().Str("actor", c.actor).Str("button", c.actionID).Logger()
	tell := func(text string) { b.ephemeral(ctx, log, c.responseURL, text) }
	defer b.recovered(log, tell)

	if _, err := uuid.Parse(c.requestID); err != nil {
		log.Warn().Msg("click carried no valid request id")
		tell("This button does not belong to a risk reset request I know.")
		return
	}
	req, err := b.store.Get(ctx, c.requestID)
	if errors.Is(err, request.ErrNotFound) {
		b.forgottenCard(ctx, log, c, tell)
		return
	}
	if err != nil {
		log.Error().Err(err).Msg("reading the request failed")
		tell(storeUnavailableText)
		return
	}
	req = b.adoptCard(ctx, log, req, c)
	if c.actionID == ActionApprove {
		b.approve(ctx, log, req, c, tell)
		return
	}
	b.reject(ctx, log, req, c, tell)
}

// adoptCard records the clicked message as the request's card when the
// click raced the replica that posted it and the card is not recorded yet,
// so the outcome still reaches the card and its thread.
func (b *Bot) adoptCard(ctx context.Context, log zerolog.Logger, req *request.Request, c click) *request.Request {
	if req.CardTS != "" || c.messageTS == "" || c.channelID != req.ChannelID {
		return req
	}
	updated, err := b.store.Update(ctx, req.ID, func(r *request.Request) error {
		if r.CardTS == "" {
			r.CardTS = c.messageTS
		}
		return nil
	})
	if err != nil {
		log.Warn().Err(err).Msg("recording the clicked card failed")
		req.CardTS = c.messageTS
		return req
	}
	return updated
}

// forgottenText explains a card whose request the bot no longer knows.
const forgottenText = "This request is no longer known to the bot (it restarted without a shared store, or the request ended over a day ago); its thread holds what the bot said about it."

// forgottenCard answers a click on a card this process no longer knows
// (restart with the in-memory store, or retention passed) and retires the
// card so nobody clicks it again.
func (b *Bot) forgottenCard(ctx context.Context, log zerolog.Logger, c click, tell func(string)) {
	log.Info().Msg("click on a request that is no longer known")
	// What became of the request is unknown here (a crash may have cut a
	// reset short), so the answer claims nothing about it.
	tell(forgottenText + " This click did nothing. Run `/risk-reset` again if the reset is still needed.")
	if c.channelID == "" || c.messageTS == "" {
		return
	}
	done, err := b.cardTurn(ctx, log, c.channelID, c.messageTS)
	if err != nil {
		log.Warn().Err(err).Msg("retiring the unknown card failed")
		return
	}
	defer done()
	_, _, _, err = b.api.UpdateMessageContext(ctx, c.channelID, c.messageTS,
		slack.MsgOptionText("Risk reset request no longer known to the bot", false),
		slack.MsgOptionBlocks(slack.NewSectionBlock(mrkdwn(":hourglass: "+forgottenText+" This card no longer works. Run `/risk-reset` again if needed."), nil, nil, slack.SectionBlockOptionBlockID(blockStatus))))
	if err != nil {
		log.Warn().Err(err).Msg("retiring the unknown card failed")
	}
}

func (b *Bot) approve(ctx context.Context, log zerolog.Logger, req *request.Request, c click, tell func(string)) {
	actor := c.actor
	if !b.authorizeClick(ctx, log, req, c, b.policy.CanApprove(ctx, actor, approvalRule(req)), tell) {
		return
	}
	if !b.authorizeClick(ctx, log, req, c, b.checkNotTarget(ctx, actor, req.Target), tell) {
		return
	}
	stale, err := b.staleApprovals(ctx, log, req)
	if err != nil {
		log.Error().Err(err).Msg("could not re-check earlier approvals")
		tell(checkFailedText)
		return
	}
	var execute bool
	updated, err := b.store.Update(ctx, req.ID, func(r *request.Request) error {
		if err := r.RevokeApprovals(stale, b.now()); err != nil {
			return err
		}
		var err error
		execute, err = r.Approve(actor, b.now())
		return err
	})
	if err != nil {
		b.clickLost(ctx, log, updated, err, tell)
		return
	}
	if len(stale) > 0 {
		b.threadReply(ctx, log, updated, fmt.Sprintf("Approval by %s no longer counts: no longer allowed to approve.", mentions(stale)))
	}
	b.auditLog(updated, request.StatePending, actor, "approved")
	if !execute {
		b.metrics.Decisions.WithLabelValues("approval").Inc()
		b.refreshCard(ctx, log, updated)
		b.threadReply(ctx, log, updated, approvalsLine(updated)+".")
		return
	}
	b.metrics.Decisions.WithLabelValues("approved").Inc()
	b.execute(ctx, log, updated)
}

// staleApprovals returns the earlier approvers of req who may no longer
// approve (removed from the approvers' group since), so an approval
// completing the quorum counts current rights only. A lookup that fails is
// an error, not a revocation: nobody loses an approval to a Slack outage.
func (b *Bot) staleApprovals(ctx context.Context, log zerolog.Logger, req *request.Request) ([]string, error) {
	var stale []string
	for _, a := range req.Approvals {
		err := b.policy.CanApprove(ctx, a.By, approvalRule(req))
		if _, denied := authz.IsDenied(err); denied {
			log.Info().Str("approver", a.By).Err(err).Msg("earlier approval no longer counts")
			stale = append(stale, a.By)
		} else if err != nil {
			return nil, err
		}
	}
	return stale, nil
}

// approvalRule is what the policy needs of req: the rule it was opened
// under, which a later configuration cannot relax.
func approvalRule(req *request.Request) authz.Request {
	return authz.Request{Requester: req.Requester, NeedsApprover: !req.SelfConfirm()}
}

func mentions(ids []string) string {
	m := make([]string, len(ids))
	for i, id := range ids {
		m[i] = "<@" + id + ">"
	}
	return joinOr(m)
}

func (b *Bot) reject(ctx context.Context, log zerolog.Logger, req *request.Request, c click, tell func(string)) {
	if !b.authorizeClick(ctx, log, req, c, b.policy.CanReject(ctx, c.actor, req.Requester), tell) {
		return
	}
	if c.actor != req.Requester && !c.confirmed && req.State == request.StatePending && b.askDenyReason(ctx, log, req, c) {
		return
	}
	updated, err := b.store.Update(ctx, req.ID, func(r *request.Request) error { return r.Reject(c.actor, c.note, b.now()) })
	if err != nil {
		b.clickLost(ctx, log, updated, err, tell)
		return
	}
	b.metrics.Decisions.WithLabelValues(string(updated.State)).Inc()
	b.finishVisibly(ctx, log, updated, request.StatePending, c.actor, "")
}

// askDenyReason opens the optional reason form for an approver's denial
// and reports whether it did; when it cannot, the denial goes ahead
// without a reason, since the click said what the approver wants.
func (b *Bot) askDenyReason(ctx context.Context, log zerolog.Logger, req *request.Request, c click) bool {
	if c.triggerID == "" {
		return false
	}
	meta, _ := json.Marshal(denyMeta{RequestID: req.ID, ResponseURL: c.responseURL})
	if _, err := b.api.OpenViewContext(ctx, c.triggerID, denyModal(string(meta), req)); err != nil {
		log.Warn().Err(err).Msg("opening the deny form failed; denying without a reason")
		return false
	}
	return true
}

// authorizeClick reports whether the click may proceed, telling the actor
// why not when it may not. A refusal is recorded in the audit channel, as
// a refused command is.
func (b *Bot) authorizeClick(ctx context.Context, log zerolog.Logger, req *request.Request, c click, err error, tell func(string)) bool {
	if err == nil {
		return true
	}
	b.metrics.Decisions.WithLabelValues("refused").Inc()
	if denied, ok := authz.IsDenied(err); ok {
		log.Warn().Str("event", "audit").Str("action", "click_denied").Str("refusal", string(denied.Reason)).Msg("click refused")
		tell(":no_entry: " + capitalize(denied.Message))
		b.auditClickRefusal(ctx, log, req, c, denied)
		return false
	}
	log.Error().Err(err).Msg("could not check the clicker's permission")
	tell(checkFailedText)
	return false
}

// refusalRecordTTL is how long a refused click's audit record stands for
// the same person's further clicks of the same button on the same card.
const refusalRecordTTL = 10 * time.Minute

// auditClickRefusal records a refused click in the audit channel, once per
// person, request and button within refusalRecordTTL (across replicas, through the
// store). The audit channel takes about one post a second, and the record
// a reset writes before it runs waits in the same line: someone clicking a
// refused button over and over must not hold approved resets up.
func (b *Bot) auditClickRefusal(ctx context.Context, log zerolog.Logger, req *request.Request, c click, denied *authz.DeniedError) {
	if b.cfg.AuditChannelID == "" {
		return
	}
	first, err := b.store.FirstDelivery(ctx, "refusal:"+req.ID+":"+c.actor+":"+c.actionID, refusalRecordTTL)
	if err != nil {
		log.Warn().Err(err).Msg("checking for an earlier refusal record failed; recording this one")
	} else if !first {
		log.Info().Msg("refused click already in the audit channel")
		return
	}
	link := b.permalink(ctx, log, req.ChannelID, req.CardTS)
	b.auditRefusal(ctx, log, clickWhat(c.actionID), c.actor, refusedClickWhere(req), denied.Message, link)
}

// clickWhat names a refused click in its audit record.
func clickWhat(actionID string) string {
	if actionID == ActionApprove {
		return "an approve click"
	}
	return "a cancel/deny click"
}

// refusedClickWhere says which request a refused click was on.
func refusedClickWhere(r *request.Request) string {
	return fmt.Sprintf(" on request `%s` to reset *%s* (requested by <@%s>)", r.ID, escape(targetLabel(r.Target)), r.Requester)
}

// clickLost tells the loser of a race (or a late clicker) who decided and
// when; a click that found the request past its expiry expires it.
func (b *Bot) clickLost(ctx context.Context, log zerolog.Logger, cur *request.Request, err error, tell func(string)) {
	b.metrics.Decisions.WithLabelValues("lost").Inc()
	decided, ok := errors.AsType[*request.DecidedError](err)
	switch {
	case errors.Is(err, request.ErrAlreadyApproved):
		tell("You have already approved this request; it is waiting for another approver.")
	case ok && decided.State == request.StateExpired:
		tell("This request has expired; nothing was changed. Run `/risk-reset` again if the reset is still needed.")
		if cur != nil && cur.State == request.StatePending {
			b.expire(ctx, cur.ID)
		}
	case ok:
		tell(decidedText(decided))
	default:
		log.Error().Err(err).Msg("recording the decision failed")
		tell(storeUnavailableText)
	}
}

func decidedText(d *request.DecidedError) string {
	if d.By == "" {
		return fmt.Sprintf("This request is already %s; nothing was changed.", d.State)
	}
	return fmt.Sprintf("This request was already %s by <@%s> at %s.", decidedVerb(d.State), d.By, slackDate(d.At))
}

func decidedVerb(s request.State) string {
	switch s {
	case request.StateExecuting, request.StateSucceeded, request.StateFailed:
		return "approved"
	}
	return string(s)
}

// execute runs an approved reset and makes its outcome visible. The card
// shows "resetting…" first, so nobody wonders whether the click took, and
// the audit record is written before the reset, so no reset goes
// unrecorded: when the audit channel cannot be written, the reset does not
// run.
func (b *Bot) execute(ctx context.Context, log zerolog.Logger, req *request.Request) {
	b.refreshCard(ctx, log, req)
	auditTS, err := b.openAuditRecord(ctx, req)
	if err != nil {
		log.Error().Err(err).Msg("audit channel cannot be written; reset not run")
		b.finishExecution(ctx, log, req, request.Outcome{At: b.now(), Detail: auditProblem(b.cfg.AuditChannelID, err)}, execution{}, "")
		return
	}
	b.rememberAuditRecord(ctx, log, req, auditTS)
	res, resetErr := b.cf.ResetRiskScore(ctx, req.Target.UserID)
	if resetErr != nil {
		log.Error().Err(resetErr).Msg("cloudflare reset failed")
	}
	b.finishExecution(ctx, log, req, outcomeOf(res, resetErr, b.now()), execution{ran: true, succeeded: resetErr == nil}, auditTS)
}

// rememberAuditRecord stores where the audit record is, so that a replica
// settling this reset after a crash completes that record instead of
// writing a second one. Failing to store it costs only that: the reset
// still runs, as its record exists.
func (b *Bot) rememberAuditRecord(ctx context.Context, log zerolog.Logger, req *request.Request, ts string) {
	if ts == "" {
		return
	}
	req.AuditTS = ts
	_, err := b.store.Update(ctx, req.ID, func(r *request.Request) error { r.AuditTS = ts; return nil })
	if err != nil {
		log.Warn().Err(err).Msg("storing the audit record's ts failed")
	}
}

// auditProblem says why a reset did not run because its audit record could
// not be written, and what to do about it.
func auditProblem(channel string, err error) string {
	code := slackErrorCode(err)
	fix := "Invite the bot to that channel (or fix AUDIT_CHANNEL_ID), then run the command again."
	switch code {
	case "rate_limited", "timeout", "unavailable":
		fix = "Slack did not take the record in time; run the command again in a few minutes."
	}
	return fmt.Sprintf("the audit channel %s cannot be written (%s), so the reset was not run: every reset must be on record. %s", channel, code, fix)
}

// execution says what happened to a reset: whether it was sent at all, and
// whether it succeeded.
type execution struct{ ran, succeeded bool }

func (e execution) label() string {
	switch {
	case e.succeeded:
		return "succeeded"
	case !e.ran:
		return "not_run"
	}
	return "failed"
}

// outcomeTimeout bounds recording and showing an outcome. It starts after
// the reset returns, so a slow reset cannot leave no time to tell about it.
const outcomeTimeout = 2 * time.Minute

// finishExecution records the outcome of an executing request and shows it.
func (b *Bot) finishExecution(ctx context.Context, log zerolog.Logger, req *request.Request, o request.Outcome, e execution, auditTS string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	b.recordOutcome(ctx, log, req, o, e, auditTS)
}

// recordOutcome is finishExecution within ctx as it is.
func (b *Bot) recordOutcome(ctx context.Context, log zerolog.Logger, req *request.Request, o request.Outcome, e execution, auditTS string) {
	done, err := b.store.Update(ctx, req.ID, func(r *request.Request) error { return r.Finish(o, e.succeeded) })
	if errors.Is(err, request.ErrNotExecuting) {
		// Another replica settled it first and showed the outcome.
		log.Info().Str("state", string(done.State)).Msg("outcome already recorded elsewhere")
		return
	}
	if err != nil {
		// The reset happened (or failed) regardless; report it from what
		// we know so the outcome is not lost with the store.
		log.Error().Err(err).Msg("recording the outcome failed")
		done = req.Clone()
		_ = done.Finish(o, e.succeeded)
	}
	b.metrics.Resets.WithLabelValues(e.label(), metrics.CFCode(o.Code)).Inc()
	b.announce(ctx, log, done, request.StateExecuting, req.DecidedBy, auditTS)
}

// announce shows a finished reset's outcome (see finishVisibly) and then
// records that it was: until then another replica would show it if this
// one died. "Shown" means the bot tried; a Slack call that failed for good
// is logged, not tried again later.
func (b *Bot) announce(ctx context.Context, log zerolog.Logger, r *request.Request, from request.State, actor, auditTS string) {
	b.finishVisibly(ctx, log, r, from, actor, auditTS)
	// Showing may have used up ctx (Slack rate limits in a burst).
	ctx, cancel := bookkeeping(ctx)
	defer cancel()
	if _, err := b.store.Update(ctx, r.ID, func(r *request.Request) error { r.Announced(); return nil }); err != nil {
		log.Warn().Err(err).Msg("recording that the outcome was shown failed; another replica may show it again")
	}
}

// finishVisibly makes a terminal state visible everywhere it must be: the
// card, its thread, the audit channel and the log. auditTS is the audit
// record written before the reset, which is completed rather than
// duplicated.
func (b *Bot) finishVisibly(ctx context.Context, log zerolog.Logger, r *request.Request, from request.State, actor, auditTS string) {
	b.auditLog(r, from, actor, string(r.State))
	b.refreshCard(ctx, log, r)
	text := outcomeText(r)
	b.threadReply(ctx, log, r, text)
	link := b.permalink(ctx, log, r.ChannelID, r.CardTS)
	record := auditText(r, text, link)
	if auditTS != "" {
		b.updateAuditRecord(ctx, log, auditTS, record)
		return
	}
	b.auditRecord(ctx, log, record)
}

func (b *Bot) cardView(r *request.Request) cardView {
	return cardView{approvers: b.approversText(r), status: statusText(r)}
}

// approversText says on the card who may act on it.
func (b *Bot) approversText(r *request.Request) string {
	if r.SelfConfirm() {
		return fmt.Sprintf("<@%s> confirms this reset, or cancels it.", r.Requester)
	}
	var who []string
	for _, g := range b.policy.ApproverGroups() {
		who = append(who, "<!subteam^"+g+">")
	}
	for _, u := range b.policy.ApproverUsers() {
		if u != r.Requester {
			who = append(who, "<@"+u+">")
		}
	}
	text := "Needs approval by an approver other than the requester"
	if r.RequiredApprovals > 1 {
		text = fmt.Sprintf("Needs approval by %d different approvers, none of them the requester", r.RequiredApprovals)
	}
	if len(who) > 0 {
		text += " (" + joinOr(who) + ")"
	}
	if !b.policy.RequiresApprover() {
		// The configuration changed since the request was opened.
		return text + fmt.Sprintf(", but no approvers are configured now. <@%s> may cancel and ask again.", r.Requester)
	}
	return text + fmt.Sprintf(". <@%s> may cancel.", r.Requester)
}
