package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/slack-go/slack"
)

// Start-up waits out an unreachable Slack with these delays, doubling.
const (
	authRetryFirst = time.Second
	authRetryMax   = 30 * time.Second
)

// authenticate checks the bot token with auth.test. Slack's answer that the
// token is bad ends start-up at once; Slack being unreachable or failing
// (network, 5xx) is retried until ctx ends, so that a network blip while a
// pod starts does not become a crash loop.
func (b *Bot) authenticate(ctx context.Context) (*slack.AuthTestResponse, error) {
	delay := authRetryFirst
	for attempt := 1; ; attempt++ {
		auth, err := b.api.AuthTestContext(ctx)
		if err == nil {
			return auth, nil
		}
		if !slackUnavailable(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("slack auth.test with the bot token: %w", err)
		}
		b.log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", delay).
			Msg("slack is not reachable at start; retrying")
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("slack auth.test with the bot token: %w (last error: %w)", ctx.Err(), err)
		case <-timer.C:
		}
		delay = min(2*delay, authRetryMax)
	}
}

// slackUnavailable tells a Slack that could not answer (connection error,
// 5xx) from a Slack that answered no (an error code, a 4xx).
func slackUnavailable(err error) bool {
	var refused slack.SlackErrorResponse
	if errors.As(err, &refused) {
		return false
	}
	var status slack.StatusCodeError
	if errors.As(err, &status) {
		return status.Code >= http.StatusInternalServerError
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
