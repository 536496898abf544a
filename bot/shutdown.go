package bot

import (
	"context"
	"time"

	"risk-reset-bot/internal/logging"
	"risk-reset-bot/request"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// restartingText is what people who act while the bot stops are told.
const restartingText = ":arrows_counterclockwise: risk-reset-bot is restarting. Try again in a minute; nothing was changed."

// tokenRevokedText replaces it when the bot stops because Slack no longer
// accepts its token: trying again in a minute will not help.
const tokenRevokedText = ":warning: risk-reset-bot is stopping: Slack no longer accepts its token. Nothing was changed; ask your Slack admin to reinstall the app."

// stoppingText is what people who act while the bot stops are told.
func (b *Bot) stoppingText() string {
	if b.tokenRefused.Load() {
		return tokenRevokedText
	}
	return restartingText
}

// refuseWhileDraining acks an envelope that arrives during shutdown and
// tells its sender to try again; no new work starts.
func (b *Bot) refuseWhileDraining(evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		b.ackRaw(evt.Request, ephemeralAck(b.stoppingText()))
		b.metrics.Commands.WithLabelValues("draining").Inc()
	case socketmode.EventTypeInteractive:
		cb, _ := evt.Data.(slack.InteractionCallback)
		if cb.Type == slack.InteractionTypeViewSubmission {
			// Keep the modal open, with the notice on its input.
			b.ackRaw(evt.Request, map[string]any{"response_action": "errors", "errors": map[string]string{blockReason: b.stoppingText()}})
			return
		}
		b.ackRaw(evt.Request, nil)
		if cb.ResponseURL != "" {
			b.notices.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				b.ephemeral(ctx, b.log, cb.ResponseURL, b.stoppingText())
			})
		}
	case socketmode.EventTypeErrorBadMessage:
		b.ackBadMessage(evt)
	default:
		b.ackRaw(evt.Request, nil)
	}
}

// farFuture is after every request's time: a query up to it lists them all.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// retireText ends the requests a stopping bot with its own store leaves.
const retireText = "the bot restarted before anyone decided, so this request ended; nothing was changed. Run `/risk-reset` again if the reset is still needed."

// retirePending ends every pending request visibly when the bot stops and
// nobody else will carry them on (the store is this process's memory):
// their buttons go, and the thread and audit channel say why.
func (b *Bot) retirePending() {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.ShutdownTimeout)
	defer cancel()
	pending, err := b.store.DuePending(ctx, farFuture)
	if err != nil {
		b.log.Error().Err(err).Msg("listing pending requests to end them failed")
		return
	}
	for _, r := range pending {
		log := logging.WithRequestID(b.log, r.ID)
		ended, err := b.store.Update(ctx, r.ID, func(r *request.Request) error { return r.Abort(retireText, b.now()) })
		if err != nil {
			log.Error().Err(err).Msg("ending a pending request at stop failed")
			continue
		}
		b.finishVisibly(ctx, log, ended, request.StatePending, "", "")
	}
}

// abandonTimeout bounds how long a stopping bot spends ending the resets
// it leaves running, on top of SHUTDOWN_TIMEOUT.
const abandonTimeout = 15 * time.Second

// abandonText ends a reset still running when a bot with its own store
// stops before it finishes.
const abandonText = "risk-reset-bot had to stop (SHUTDOWN_TIMEOUT) while this reset was still running, so it is unknown whether Cloudflare applied it. Check the user's risk score in the Cloudflare dashboard before asking again."

// abandonRunning ends visibly the resets still executing when the drain
// ran out of time and the store is this process's memory: nobody else
// would ever settle them, and their cards would say "resetting…" for good.
// If a reset's own handler finishes first, its outcome stands.
func (b *Bot) abandonRunning() {
	// One bound for them all: the process is past SHUTDOWN_TIMEOUT already.
	ctx, cancel := context.WithTimeout(context.Background(), abandonTimeout)
	defer cancel()
	unsettled, err := b.store.Unsettled(ctx, farFuture)
	if err != nil {
		b.log.Error().Err(err).Msg("listing running resets to end them failed")
		return
	}
	for _, r := range unsettled {
		if r.State != request.StateExecuting {
			continue // finished; its handler is showing the outcome
		}
		log := logging.WithRequestID(b.log, r.ID)
		log.Warn().Msg("stopping while this reset runs; its outcome is unknown")
		o := request.Outcome{Detail: abandonText, At: b.now()}
		b.recordOutcome(ctx, log, r, o, execution{ran: true}, r.AuditTS)
	}
}
