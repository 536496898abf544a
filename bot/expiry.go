package bot

import (
	"context"
	"errors"
	"time"

	"risk-reset-bot/internal/logging"
	"risk-reset-bot/request"
)

// sweepExpired expires due requests every SweepInterval, so a request
// nobody clicks still ends visibly, and settles resets a stopped replica
// left behind, at start and then on every sweep.
func (b *Bot) sweepExpired(ctx context.Context) {
	b.settleStuck(ctx)
	t := time.NewTicker(b.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.ExpireDue(ctx)
			b.settleStuck(ctx)
		}
	}
}

// ExpireDue expires every pending request past its expiry.
func (b *Bot) ExpireDue(ctx context.Context) {
	due, err := b.store.DuePending(ctx, b.now())
	if err != nil {
		b.log.Error().Err(err).Msg("listing expired requests failed")
		return
	}
	for _, r := range due {
		b.expire(ctx, r.ID)
	}
}

// expire moves one request to expired and makes that visible; whoever
// wins the store's compare-and-set does the telling, so it is told once.
func (b *Bot) expire(ctx context.Context, id string) {
	log := logging.WithRequestID(b.log, id)
	r, err := b.store.Update(ctx, id, func(r *request.Request) error { return r.Expire(b.now()) })
	if errors.Is(err, request.ErrNotExpired) {
		return
	}
	if err != nil {
		log.Error().Err(err).Msg("expiring the request failed")
		return
	}
	b.metrics.Decisions.WithLabelValues("expired").Inc()
	b.finishVisibly(ctx, log, r, request.StatePending, "", "")
}
