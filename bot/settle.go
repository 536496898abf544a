package bot

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"risk-reset-bot/internal/logging"
	"risk-reset-bot/request"
)

// clockSkew allows for the bot's clock and Cloudflare's disagreeing a
// little when a reset time is compared with an approval time.
const clockSkew = 2 * time.Second

// settleStuck finishes requests a replica left unsettled when it died.
// One left executing: Cloudflare's last_reset_time tells whether the reset
// happened, and the outcome is posted in the thread like any other, so it
// is not lost. One whose outcome was recorded but not shown: it is shown.
func (b *Bot) settleStuck(ctx context.Context) {
	stuck, err := b.store.Unsettled(ctx, b.now().Add(-b.cfg.StuckAfter))
	if err != nil {
		b.log.Error().Err(err).Msg("listing stuck resets failed")
		return
	}
	for _, r := range stuck {
		b.settle(ctx, r)
	}
}

func (b *Bot) settle(ctx context.Context, r *request.Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	log := logging.WithRequestID(b.log, r.ID)
	defer b.recovered(log, func(string) {})
	if r.State.Terminal() {
		b.reannounce(ctx, log, r)
		return
	}
	log.Warn().Time("executing_since", r.DecidedAt).Msg("settling a reset left executing by a stopped replica")
	o := request.Outcome{At: b.now()}
	risk, err := b.cf.GetUserRisk(ctx, r.Target.UserID)
	succeeded := false
	switch {
	case err != nil:
		o.Detail = "the bot running this reset stopped, and Cloudflare could not be asked whether it happened (" +
			cloudflareProblem(err, "the read-back") + ") Check the user's risk score in Cloudflare before asking again."
	case risk.LastResetTime != nil && !risk.LastResetTime.Before(r.DecidedAt.Add(-clockSkew)):
		succeeded, o.Verified = true, true
		o.Detail = "The bot running it stopped; Cloudflare shows the reset in place."
	default:
		o.Detail = "the bot running this reset stopped before Cloudflare applied it; nothing was changed. Run the command again."
	}
	b.finishExecution(ctx, log, r, o, execution{ran: true, succeeded: succeeded}, r.AuditTS)
}

// reannounce shows an outcome a stopped replica recorded but did not show.
// Every replica's sweep lists it, so one claims it first; a claim lapses
// after StuckAfter, for when the claimer dies too.
func (b *Bot) reannounce(ctx context.Context, log zerolog.Logger, r *request.Request) {
	first, err := b.store.FirstDelivery(ctx, "announce:"+r.ID, b.cfg.StuckAfter)
	if err != nil || !first {
		if err != nil {
			log.Warn().Err(err).Msg("claiming an unshown outcome failed; leaving it for the next sweep")
		}
		return
	}
	log.Warn().Str("state", string(r.State)).Msg("showing an outcome a stopped replica recorded but did not show")
	b.announce(ctx, log, r, request.StateExecuting, r.DecidedBy, r.AuditTS)
}
