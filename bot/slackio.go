package bot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"risk-reset-bot/request"
)

// ephemeral answers only the person who typed or clicked, through the
// interaction's response_url: it works even where the bot is not a member.
func (b *Bot) ephemeral(ctx context.Context, log zerolog.Logger, responseURL, text string) {
	if responseURL == "" {
		log.Warn().Msg("no response_url to answer on")
		return
	}
	err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, b.cfg.HTTPClient, &slack.WebhookMessage{
		Text: text, ResponseType: slack.ResponseTypeEphemeral,
	})
	if err != nil {
		log.Error().Err(withoutURL(err)).Msg("answering the user failed")
	}
}

// withoutURL drops the URL from an HTTP client error: a response_url is a
// bearer credential for answering in that conversation, so it stays out
// of logs.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s response_url: %w", ue.Op, ue.Err)
	}
	if strings.Contains(err.Error(), "://") {
		return errors.New("posting to the response_url failed")
	}
	return err
}

// postMessage posts to channel, one post at a time per channel (see
// turns), and returns the new message's ts.
func (b *Bot) postMessage(ctx context.Context, channel string, opts ...slack.MsgOption) (string, error) {
	done, err := b.posts.wait(ctx, channel)
	if err != nil {
		return "", fmt.Errorf("waiting for a turn to post in %s: %w", channel, err)
	}
	defer done()
	_, ts, err := b.api.PostMessageContext(ctx, channel, opts...)
	return ts, err
}

// threadReply posts text in the card's thread.
func (b *Bot) threadReply(ctx context.Context, log zerolog.Logger, r *request.Request, text string) {
	if r.CardTS == "" {
		return
	}
	_, err := b.postMessage(ctx, r.ChannelID,
		slack.MsgOptionText(text, false), slack.MsgOptionTS(r.CardTS))
	if err != nil {
		log.Error().Err(err).Msg("replying in the card's thread failed")
	}
}

// permalink returns a link to a message, or "" when Slack cannot give one.
func (b *Bot) permalink(ctx context.Context, log zerolog.Logger, channelID, ts string) string {
	if channelID == "" || ts == "" {
		return ""
	}
	link, err := b.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channelID, Ts: ts})
	if err != nil {
		log.Warn().Err(err).Msg("chat.getPermalink failed")
		return ""
	}
	return link
}

// auditRecord posts one record to the audit channel, when one is set.
func (b *Bot) auditRecord(ctx context.Context, log zerolog.Logger, text string) {
	if b.cfg.AuditChannelID == "" {
		return
	}
	_, err := b.postMessage(ctx, b.cfg.AuditChannelID, slack.MsgOptionText(text, false))
	if err != nil {
		log.Error().Err(err).Str("audit_channel", b.cfg.AuditChannelID).Msg("writing the audit record failed")
	}
}

// auditRefusal records one refusal in the audit channel: what was
// refused, whose, where, the reason they were told and, when there is
// one, a link to the card. authz builds its messages from Slack IDs only
// (configured ones and the requester's), so their mentions and channel
// links are kept live.
func (b *Bot) auditRefusal(ctx context.Context, log zerolog.Logger, what, actor, where, message, link string) {
	text := fmt.Sprintf(":no_entry: Refused %s from <@%s>%s: %s", what, actor, where, message)
	if link != "" {
		text += "\nCard: " + link
	}
	b.auditRecord(ctx, log, text)
}

// openAuditRecord writes the audit record of a reset about to run and
// returns its ts; with no audit channel it returns "" and no error.
func (b *Bot) openAuditRecord(ctx context.Context, r *request.Request) (string, error) {
	if b.cfg.AuditChannelID == "" {
		return "", nil
	}
	ts, err := b.postMessage(ctx, b.cfg.AuditChannelID,
		slack.MsgOptionText(auditText(r, statusText(r), ""), false))
	if err != nil {
		return "", fmt.Errorf("writing to the audit channel: %w", err)
	}
	return ts, nil
}

// updateAuditRecord completes an audit record with the outcome; if the
// update fails, a new record is posted so the outcome is not lost.
func (b *Bot) updateAuditRecord(ctx context.Context, log zerolog.Logger, ts, text string) {
	_, _, _, err := b.api.UpdateMessageContext(ctx, b.cfg.AuditChannelID, ts, slack.MsgOptionText(text, false))
	if err != nil {
		log.Warn().Err(err).Msg("completing the audit record failed; posting a new one")
		b.auditRecord(ctx, log, text)
	}
}

// auditLog writes the structured line a SIEM ingests for one transition.
// It starts from the bot's base logger, not the handler's, so no field
// appears twice in the line.
func (b *Bot) auditLog(r *request.Request, from request.State, actor, what string) {
	e := b.log.Info().Str("event", "audit").Str("request_id", r.ID).
		Str("state_from", string(from)).Str("state_to", string(r.State)).
		Str("actor", actor).Str("requester", r.Requester).
		Str("target_user_id", r.Target.UserID).Str("target_email", r.Target.Email).
		Str("reason", r.Reason).Str("channel", r.ChannelID).
		Time("created_at", r.CreatedAt).Time("expires_at", r.ExpiresAt)
	if o := r.Outcome; o != nil {
		e = e.Bool("verified", o.Verified).Int("cf_status", o.HTTP).Int("cf_code", o.Code).Str("cf_ray", o.CFRay).Str("detail", o.Detail)
	}
	e.Msg(what)
}
