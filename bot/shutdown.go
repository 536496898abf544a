package bot

import (
	"context"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// restartingText is what people who act while the bot stops are told.
const restartingText = ":arrows_counterclockwise: risk-reset-bot is restarting. Try again in a minute; nothing was changed."

// refuseWhileDraining acks an envelope that arrives during shutdown and
// tells its sender to try again; no new work starts.
func (b *Bot) refuseWhileDraining(evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		b.ackRaw(evt.Request, ephemeralAck(restartingText))
		b.metrics.Commands.WithLabelValues("draining").Inc()
	case socketmode.EventTypeInteractive:
		cb, _ := evt.Data.(slack.InteractionCallback)
		if cb.Type == slack.InteractionTypeViewSubmission {
			// Keep the modal open, with the notice on its input.
			b.ackRaw(evt.Request, map[string]any{"response_action": "errors", "errors": map[string]string{blockReason: restartingText}})
			return
		}
		b.ackRaw(evt.Request, nil)
		if cb.ResponseURL != "" {
			b.notices.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				b.ephemeral(ctx, b.log, cb.ResponseURL, restartingText)
			})
		}
	case socketmode.EventTypeErrorBadMessage:
		b.ackBadMessage(evt)
	default:
		b.ackRaw(evt.Request, nil)
	}
}
