package bot

import (
	"context"
	"errors"
	"time"

	"risk-reset-bot/internal/logging"
	"risk-reset-bot/request"
)

// cardPostGrace is how long past its expiry a request whose card was never
// recorded waits before it is expired without a card to update.
const cardPostGrace = 2 * time.Minute

// sweepExpired expires due requests every SweepInterval, so a request
// nobody clicks still ends visibly, and settles resets a stopped replica
// left behind, at start and then on every sweep.
// A sweep that has started finishes even when ctx ends, so an expiry is
// never announced halfway.
func (b *Bot) sweepExpired(ctx context.Context) {
	sweep := func(first bool) {
		work, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.HandlerTimeout)
		defer cancel()
		if !first {
			b.ExpireDue(work)
		}
		b.settleStuck(work)
	}
	sweep(true)
	t := time.NewTicker(b.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sweep(false)
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
		// A card still being posted (its ts not yet recorded) is left
		// alone a little longer, so its expiry reaches the card.
		if r.CardTS == "" && b.now().Before(r.ExpiresAt.Add(cardPostGrace)) {
			continue
		}
		b.expire(ctx, r.ID)
	}
}

// expire moves one request to expired and makes that visible; whoever
// wins the store's compare-and-set does the telling, so it is told once.
func (b *Bot) expire(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	log := logging.WithRequestID(b.log, id)
	defer b.recovered(log, func(string) {})
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
