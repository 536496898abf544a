package bot

import "fmt"

// revokedTokenErrors are Web API answers that mean the bot token no longer
// works at all. A bot that keeps running with it cannot post a card, an
// outcome or an audit record, so it stops and says why, as it does when
// Slack refuses it at start.
var revokedTokenErrors = map[string]bool{
	"invalid_auth": true, "not_authed": true, "account_inactive": true,
	"token_revoked": true, "token_expired": true,
}

// AuthWatch hears of the Slack Web API errors the bot's HTTP transport
// sees (see metrics.SlackTransport) and tells Run when one means the bot
// token was revoked while it ran.
type AuthWatch struct{ failed chan error }

// NewAuthWatch returns a watch to pass to both the transport and Deps.
func NewAuthWatch() *AuthWatch { return &AuthWatch{failed: make(chan error, 1)} }

// Observe is called with each Slack error answer: the Web API method and
// Slack's error code. It never blocks.
func (w *AuthWatch) Observe(method, code string) {
	// apps.connections.open runs on the app token; Run's connection
	// handling judges its errors.
	if w == nil || !revokedTokenErrors[code] || method == "apps.connections.open" {
		return
	}
	err := fmt.Errorf("slack web api: %s answered %s: the bot token no longer works (reinstall the app and update SLACK_BOT_TOKEN)", method, code)
	select {
	case w.failed <- err:
	default:
	}
}

// failures is the channel Run waits on; nil (never ready) without a watch.
func (w *AuthWatch) failures() <-chan error {
	if w == nil {
		return nil
	}
	return w.failed
}
