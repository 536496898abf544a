package bot

import (
	"context"
	"encoding/json"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"risk-reset-bot/request"
)

// maxCardDraws bounds how often one refresh redraws a card that keeps
// changing under it. A request changes at most 7 times (up to 5
// approvals, executing, its end), and a redraw follows only a change, so
// the bound is never what ends a refresh: each one ends on the newest
// state, even when its first update landed late.
const maxCardDraws = 10

// refreshCard rewrites r's card to show the request as the store has it
// when the update is sent. An update can be slow (slack-go waits out a 429
// and resends it), and one drawn from an older state landing after a newer
// one would, say, put the buttons back on a finished request. So updates
// of one card go one at a time within this replica, each drawn from the
// store just before it is sent; and after each the request is read again
// and the card redrawn if it changed meanwhile, which covers an update by
// another replica that this one's slow update overwrote.
func (b *Bot) refreshCard(ctx context.Context, log zerolog.Logger, r *request.Request) {
	if r.CardTS == "" {
		return
	}
	done, err := b.cardTurn(ctx, log, r.ChannelID, r.CardTS)
	if err != nil {
		log.Error().Err(err).Msg("updating the card failed")
		return
	}
	defer done()
	var shown string
	for range maxCardDraws {
		cur := b.newestState(ctx, log, r)
		text, blocks := cardText(cur), cardBlocks(cur, b.cardView(cur))
		drawing := drawingOf(text, blocks)
		if drawing == shown {
			return
		}
		_, _, _, err := b.api.UpdateMessageContext(ctx, r.ChannelID, r.CardTS,
			slack.MsgOptionText(text, true), slack.MsgOptionBlocks(blocks...))
		if err != nil {
			log.Error().Err(err).Msg("updating the card failed")
			return
		}
		shown = drawing
	}
}

// newestState returns what r's card should show: the request as stored,
// unless the caller holds a terminal state the store does not (recording
// an outcome failed), which is then shown, as an ended request must never
// look pending again. A failed read falls back to the caller's copy.
func (b *Bot) newestState(ctx context.Context, log zerolog.Logger, r *request.Request) *request.Request {
	stored, err := b.store.Get(ctx, r.ID)
	if err != nil {
		log.Warn().Err(err).Msg("reading the request back for its card failed; drawing it as last known")
		return r
	}
	if r.State.Terminal() && !stored.State.Terminal() {
		return r
	}
	// The card is where the caller says: a card adopted from a click may
	// not be recorded in the store.
	stored.ChannelID, stored.CardTS = r.ChannelID, r.CardTS
	return stored
}

// drawingOf renders a card's content to compare two drawings.
func drawingOf(text string, blocks []slack.Block) string {
	raw, _ := json.Marshal(blocks)
	return text + "\x00" + string(raw)
}

// cardTurn waits until no other update of the card is in flight from this
// replica, and returns the function that ends this update's turn. A wait
// is logged: a card that keeps waiting points at Slack rate-limiting it.
func (b *Bot) cardTurn(ctx context.Context, log zerolog.Logger, channel, ts string) (func(), error) {
	key := channel + "/" + ts
	if b.cards.busy(key) {
		log.Debug().Msg("card update waits for the one in flight")
	}
	return b.cards.wait(ctx, key)
}
