// Package bot adapts Slack to the request lifecycle: it receives slash
// commands and button clicks over Socket Mode, acks them at once, and runs
// the slow work (Slack Web API, Cloudflare) afterwards.
package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"risk-reset-bot/authz"
	"risk-reset-bot/cloudflare"
	"risk-reset-bot/internal/metrics"
	"risk-reset-bot/request"
)

// Cloudflare is the part of the Cloudflare client the bot uses.
type Cloudflare interface {
	ResetRiskScore(ctx context.Context, userID string) (*cloudflare.ResetResult, error)
	GetUserRisk(ctx context.Context, userID string) (*cloudflare.UserRisk, error)
	FindUserByEmail(ctx context.Context, email string) (*cloudflare.User, error)
}

// Config tunes the bot.
type Config struct {
	BotToken       string
	AppToken       string
	APIURL         string // Slack Web API base, with trailing slash
	AuditChannelID string
	RequestTTL     time.Duration
	// RequiredApprovals is how many distinct approvers must approve when
	// the policy has approvers.
	RequiredApprovals int
	// RequireReason asks for a reason in a modal when the command has none.
	RequireReason bool
	// MaxConcurrent bounds handlers running at once; envelopes beyond it
	// are acked and wait their turn.
	MaxConcurrent int
	// SweepInterval is how often expired requests are looked for.
	SweepInterval time.Duration
	// HandlerTimeout bounds one handler's work, Slack retries included.
	HandlerTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight work may take to finish
	// after a stop is asked for.
	ShutdownTimeout time.Duration
	// StuckAfter is how long a request may stay executing before another
	// replica settles it as stopped mid-reset; it exceeds HandlerTimeout.
	StuckAfter time.Duration
	// SharedStore says the request store outlives this process and is
	// shared with other replicas (Redis). Then a stopping bot leaves
	// pending requests to the others and closes its Socket Mode connection
	// at once, so Slack sends new work elsewhere; with a store of its own,
	// it ends its pending requests visibly instead.
	SharedStore bool
	// PingTimeout is how long the bot waits for Slack's ping before it
	// rebuilds the connection.
	PingTimeout time.Duration
	HTTPClient  *http.Client
}

func (c *Config) setDefaults() {
	if c.RequestTTL <= 0 {
		c.RequestTTL = 30 * time.Minute
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 16
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = 15 * time.Second
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = 3 * time.Minute
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = c.HandlerTimeout + 2*time.Minute
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 30 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
}

// Deps are the bot's collaborators.
type Deps struct {
	Cloudflare Cloudflare
	Policy     *authz.Policy
	Store      request.Store
	Log        zerolog.Logger
	Metrics    *metrics.Metrics
	Now        func() time.Time // time.Now in production, a fake in tests
	// AuthWatch, when set, stops the bot when Slack says its token no
	// longer works.
	AuthWatch *AuthWatch
}

// Bot serves `/risk-reset` over Socket Mode.
type Bot struct {
	cfg     Config
	api     *slack.Client
	sm      *socketmode.Client
	cf      Cloudflare
	policy  *authz.Policy
	store   request.Store
	log     zerolog.Logger
	metrics *metrics.Metrics
	now     func() time.Time
	auth    *AuthWatch

	posts        *turns // one chat.postMessage in flight per channel
	cards        *turns // one chat.update in flight per card (channel/ts)
	sem          chan struct{}
	inflight     sync.WaitGroup
	notices      sync.WaitGroup // "restarting" answers sent while draining
	botUser      string         // the bot's own user ID, for "invite @bot" hints
	connected    atomic.Bool    // a Socket Mode connection is up
	draining     atomic.Bool    // shutting down: no new work
	tokenRefused atomic.Bool    // stopping because Slack refuses the bot token
}

// New returns a bot; Run starts it.
func New(cfg Config, d Deps) *Bot {
	cfg.setDefaults()
	api := NewSlackClient(cfg)
	return &Bot{
		cfg:     cfg,
		api:     api,
		sm:      socketmode.New(api, socketmode.OptionPingInterval(cfg.PingTimeout)),
		cf:      d.Cloudflare,
		policy:  d.Policy,
		store:   d.Store,
		log:     d.Log,
		metrics: d.Metrics,
		posts:   newTurns(),
		cards:   newTurns(),
		now:     d.Now,
		auth:    d.AuthWatch,
		sem:     make(chan struct{}, cfg.MaxConcurrent),
	}
}

// NewSlackClient returns the Web API client the bot uses: rate limits
// (HTTP 429) are waited out as Slack's Retry-After says, and Slack 5xx
// answers and dropped connections are retried with backoff (see
// slackRetryHandlers). The retry count is high on purpose: the caller's
// context is the real bound, so a burst into one channel (Slack allows
// about a message a second) queues rather than fails, and a card update or
// an outcome reply outlasts a short Slack outage instead of being lost.
func NewSlackClient(cfg Config) *slack.Client {
	cfg.setDefaults()
	retry := slack.RetryConfig{
		MaxRetries:         1000,
		RetryAfterDuration: 2 * time.Second,
		RetryAfterJitter:   250 * time.Millisecond,
		BackoffInitial:     200 * time.Millisecond,
		BackoffMax:         10 * time.Second,
		BackoffJitter:      100 * time.Millisecond,
	}
	retry.Handlers = slackRetryHandlers(retry)
	return slack.New(cfg.BotToken,
		slack.OptionAPIURL(cfg.APIURL),
		slack.OptionAppLevelToken(cfg.AppToken),
		slack.OptionHTTPClient(cfg.HTTPClient),
		slack.OptionRetryConfig(retry),
	)
}

// slackRetryHandlers retries 429s as Slack asks, and 5xx answers and
// connection errors a few times with backoff (see transientRetry). A
// chat.postMessage retried after a 5xx may, rarely, post twice; an outcome
// said twice beats one never said.
func slackRetryHandlers(cfg slack.RetryConfig) []slack.RetryHandler {
	return []slack.RetryHandler{
		slack.NewRateLimitErrorRetryHandler(cfg),
		transientRetry{slack.NewConnectionErrorRetryHandler()},
		transientRetry{slack.NewServerErrorRetryHandler(cfg)},
	}
}

// maxTransientRetries bounds retries of a call Slack failed with a 5xx or
// a dropped connection: about 6 s of backoff bridges a blip, and a longer
// outage fails the call, so the steps after it (the thread reply after
// the card update, the audit record after that) are still tried.
const maxTransientRetries = 5

// noRetry are the methods a 5xx or connection retry cannot help: views.open
// and views.push spend a trigger_id that works once and for 3 s, and
// auth.test at start has its own loop that says what it waits for.
var noRetry = []string{"views.open", "views.push", "auth.test"}

// transientRetry retries a 5xx or a dropped connection at most
// maxTransientRetries times, and never for the methods in noRetry.
type transientRetry struct{ slack.RetryHandler }

func (h transientRetry) ShouldRetry(state *slack.RetryState, req *http.Request, resp *http.Response, err error) (bool, time.Duration) {
	// Backoff counts only the retries this kind of handler asked for, so
	// 429s waited out before do not use up these.
	if state.Backoff.Attempts() >= maxTransientRetries || slices.Contains(noRetry, path.Base(req.URL.Path)) {
		return false, 0
	}
	return h.RetryHandler.ShouldRetry(state, req, resp, err)
}

// GroupMembers implements authz.GroupMembers through usergroups.users.list.
type GroupMembers struct{ API *slack.Client }

// GroupMembers returns the members of a user group.
func (g GroupMembers) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	members, err := g.API.GetUserGroupMembersContext(ctx, groupID)
	if err != nil {
		return nil, fmt.Errorf("usergroups.users.list: %w", err)
	}
	return members, nil
}

// Run connects to Slack and serves until ctx ends or the connection fails
// for good. When ctx ends it stops taking new work, lets in-flight work
// finish (bounded by ShutdownTimeout) and returns nil. When Slack no
// longer accepts the bot token it stops the same way and returns why.
func (b *Bot) Run(ctx context.Context) error {
	auth, err := b.authenticate(ctx)
	if err != nil {
		if ctx.Err() != nil {
			b.log.Info().Err(err).Msg("stopped before connecting to Slack")
			return nil
		}
		return err
	}
	b.botUser = auth.UserID
	b.log.Info().Str("bot_user", auth.UserID).Str("team", auth.TeamID).Msg("slack bot token accepted")

	// Work and the sweeper stop with ctx, or when the bot stops on its own.
	ctx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	// The connection outlives ctx while the bot drains, so envelopes that
	// arrive meanwhile are still acked.
	smCtx, stopSocket := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSocket()
	smErr := make(chan error, 1)
	go func() { smErr <- b.sm.RunContext(smCtx) }()
	sweeping := make(chan struct{})
	go func() { b.sweepExpired(ctx); close(sweeping) }()
	revoked := make(chan error, 1)

	for {
		select {
		case <-ctx.Done():
			b.stop(stopSocket, sweeping)
			return nil
		case err := <-smErr:
			b.connected.Store(false)
			b.inflight.Wait()
			return fmt.Errorf("slack socket mode: %w", err)
		case err := <-b.auth.failures():
			// Checked aside, so envelopes are still acked meanwhile.
			go b.confirmRevoked(ctx, err, revoked)
		case err := <-revoked:
			b.tokenRefused.Store(true)
			stopWork()
			b.stop(stopSocket, sweeping)
			return err
		case evt, ok := <-b.sm.Events:
			if !ok {
				return errors.New("slack socket mode: event channel closed")
			}
			if err := b.dispatch(ctx, evt); err != nil {
				b.connected.Store(false)
				b.inflight.Wait()
				return err
			}
		}
	}
}

// stop ends a run whose work context has ended: in-flight work finishes
// (bounded by ShutdownTimeout) while new envelopes are refused. With a
// shared store the connection closes at once, so Slack sends new work to
// the other replicas, which carry on what this one leaves; without one,
// what it leaves is ended visibly.
func (b *Bot) stop(stopSocket func(), sweeping <-chan struct{}) {
	if b.cfg.SharedStore {
		stopSocket()
	}
	finished := b.drain(sweeping)
	if b.cfg.SharedStore {
		return
	}
	if !finished {
		b.abandonRunning()
	}
	b.retirePending()
}

// confirmRevoked sends answer on revoked when tokenRevoked confirms it.
func (b *Bot) confirmRevoked(ctx context.Context, answer error, revoked chan<- error) {
	if b.tokenRevoked(ctx, answer) {
		select {
		case revoked <- answer:
		default:
		}
	}
}

// tokenRevoked confirms with auth.test that a Web API answer meant the bot
// token no longer works, so one odd answer does not stop the bot; a check
// that cannot be made (Slack unreachable) does not stop it either.
func (b *Bot) tokenRevoked(ctx context.Context, answer error) bool {
	checkCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := b.api.AuthTestContext(checkCtx)
	if err == nil {
		b.log.Warn().Err(answer).Msg("slack refused the bot token once, but auth.test accepts it; carrying on")
		return false
	}
	if code := slackErrorCode(err); !revokedTokenErrors[code] {
		b.log.Warn().Err(answer).Str("auth_test", code).Msg("slack refused the bot token once; auth.test could not confirm it; carrying on")
		return false
	}
	b.log.Error().Err(answer).Msg("slack no longer accepts the bot token; stopping")
	b.connected.Store(false)
	return true
}

// drain answers new envelopes with "restarting" while in-flight handlers
// and the current expiry sweep finish, for at most ShutdownTimeout. It
// reports whether they finished in time.
func (b *Bot) drain(sweeping <-chan struct{}) (finished bool) {
	b.draining.Store(true)
	defer b.notices.Wait()
	b.log.Info().Msg("stopping: finishing in-flight work")
	done := make(chan struct{})
	go func() { b.inflight.Wait(); <-sweeping; close(done) }()
	timeout := time.NewTimer(b.cfg.ShutdownTimeout)
	defer timeout.Stop()
	for {
		select {
		case <-done:
			return true
		case <-timeout.C:
			b.log.Warn().Dur("timeout", b.cfg.ShutdownTimeout).Msg("stopping with work still in flight")
			return false
		case evt, ok := <-b.sm.Events:
			if !ok {
				<-done
				return true
			}
			b.refuseWhileDraining(evt)
		}
	}
}

// Ready reports why the bot cannot serve, or nil when it can: a Socket
// Mode connection is up and the request store answers.
func (b *Bot) Ready(ctx context.Context) error {
	if b.draining.Load() {
		return errors.New("shutting down")
	}
	if !b.connected.Load() {
		return errors.New("slack socket mode not connected")
	}
	if err := b.store.Ping(ctx); err != nil {
		return fmt.Errorf("request store unreachable: %w", err)
	}
	return nil
}

// dispatch acks evt before anything else touches the network, then hands
// the work to a handler goroutine.
func (b *Bot) dispatch(ctx context.Context, evt socketmode.Event) error {
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			b.ackRaw(evt.Request, nil)
			return nil
		}
		parsed, parseErr := ParseCommand(cmd.Text)
		// Input the parser rejects is answered in the ack itself: no
		// network call, nothing else happens.
		if parseErr != nil || parsed.Help {
			text := usageText
			if parseErr != nil {
				text = usageFor(parseErr)
				b.log.Info().Str("user", cmd.UserID).Str("channel", cmd.ChannelID).Str("event", "command_rejected").Msg("unparseable command")
			}
			b.ackRaw(evt.Request, ephemeralAck(text))
			b.metrics.Commands.WithLabelValues("usage").Inc()
			return nil
		}
		b.ackRaw(evt.Request, nil)
		b.spawn(ctx, evt.Request, cmd.ResponseURL, func(ctx context.Context) { b.handleCommand(ctx, cmd, parsed) })
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		switch {
		case ok && cb.Type == slack.InteractionTypeBlockActions:
			b.ackRaw(evt.Request, nil)
			b.spawn(ctx, evt.Request, cb.ResponseURL, func(ctx context.Context) { b.handleBlockActions(ctx, cb) })
		case ok && cb.Type == slack.InteractionTypeViewSubmission:
			// Form errors go back in the ack, which keeps the modal open.
			if errs := viewSubmissionAck(cb); errs != nil {
				b.ackRaw(evt.Request, errs)
				return nil
			}
			b.ackRaw(evt.Request, nil)
			b.spawn(ctx, evt.Request, "", func(ctx context.Context) { b.handleViewSubmission(ctx, cb) })
		default:
			b.ackRaw(evt.Request, nil)
		}
	case socketmode.EventTypeEventsAPI:
		b.ackRaw(evt.Request, nil)
	case socketmode.EventTypeErrorBadMessage:
		b.ackBadMessage(evt)
	case socketmode.EventTypeConnecting:
		b.connected.Store(false)
		b.log.Debug().Msg("connecting to slack socket mode")
	case socketmode.EventTypeConnected:
		if c, ok := evt.Data.(*socketmode.ConnectedEvent); ok && c.ConnectionCount > 0 {
			b.metrics.Reconnects.Inc()
		}
		b.connected.Store(true)
		b.log.Info().Msg("connected to slack socket mode")
	case socketmode.EventTypeConnectionError:
		b.connected.Store(false)
		return b.connectionError(evt)
	case socketmode.EventTypeHello, socketmode.EventTypeDisconnect:
		// Control frames carry no envelope and are never acked.
	default:
		b.ackRaw(evt.Request, nil)
	}
	return nil
}

// fatalSlackErrors are answers to connecting that no retry can fix: the
// process stops and says why, rather than reconnecting forever.
var fatalSlackErrors = map[string]bool{
	"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
	"not_allowed_token_type": true, "missing_scope": true, "link_disabled": true,
}

// connectionError decides whether a failed connection attempt is fatal.
func (b *Bot) connectionError(evt socketmode.Event) error {
	ce, ok := evt.Data.(*slack.ConnectionErrorEvent)
	if !ok {
		return nil
	}
	code := slackErrorCode(ce.ErrorObj)
	if fatalSlackErrors[code] {
		b.log.Error().Str("slack_error", code).Msg("slack refused the connection; retrying cannot fix this")
		return fmt.Errorf("slack socket mode: %s (check SLACK_APP_TOKEN and the app's Socket Mode setting)", code)
	}
	b.log.Warn().Err(ce.ErrorObj).Int("attempt", ce.Attempt).Dur("backoff", ce.Backoff).Msg("slack socket mode connection failed; retrying")
	return nil
}

// ackRaw acks the envelope of req, if it has one.
func (b *Bot) ackRaw(req *socketmode.Request, payload any) {
	if req == nil || req.EnvelopeID == "" {
		return
	}
	var err error
	if payload != nil {
		err = b.sm.Ack(*req, payload)
	} else {
		err = b.sm.Ack(*req)
	}
	if err != nil {
		b.log.Error().Err(err).Str("envelope_id", req.EnvelopeID).Msg("acking envelope failed")
	}
}

// ackBadMessage acks a frame slack-go could not decode, so Slack does not
// redeliver it forever.
func (b *Bot) ackBadMessage(evt socketmode.Event) {
	bad, ok := evt.Data.(*socketmode.ErrorBadMessage)
	if !ok {
		return
	}
	var env struct {
		EnvelopeID string `json:"envelope_id"`
	}
	if json.Unmarshal(bad.Message, &env) == nil && env.EnvelopeID != "" {
		b.ackRaw(&socketmode.Request{EnvelopeID: env.EnvelopeID}, nil)
	}
	b.log.Warn().Err(bad.Cause).Str("envelope_id", env.EnvelopeID).Msg("ignored a socket mode frame that could not be decoded")
}

func ephemeralAck(text string) map[string]any {
	return map[string]any{"response_type": "ephemeral", "text": text}
}

// spawn runs fn after the ack, once per envelope, with bounded concurrency
// and a recover so one bad payload cannot take the bot down.
//
// responseURL is where to say "restarting" if the bot stops before the
// work starts; acked work never vanishes without a word.
func (b *Bot) spawn(ctx context.Context, req *socketmode.Request, responseURL string, fn func(context.Context)) {
	b.inflight.Add(1)
	go func() {
		defer b.inflight.Done()
		defer b.recovered(b.log, func(string) {})
		if req != nil && req.EnvelopeID != "" {
			checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			first, err := b.store.FirstDelivery(checkCtx, req.EnvelopeID, time.Hour)
			cancel()
			if err != nil {
				b.log.Error().Err(err).Str("envelope_id", req.EnvelopeID).Msg("checking envelope redelivery")
			}
			if err == nil && !first {
				b.log.Info().Str("envelope_id", req.EnvelopeID).Int("retry_attempt", req.RetryAttempt).Msg("ignored redelivered envelope")
				return
			}
		}
		select {
		case b.sem <- struct{}{}:
			defer func() { <-b.sem }()
		case <-ctx.Done():
			tellCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			b.ephemeral(tellCtx, b.log, responseURL, b.stoppingText())
			return
		}
		// Handlers finish what they started (a reset and its outcome) even
		// when the bot is asked to stop.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.HandlerTimeout)
		defer cancel()
		fn(hctx)
	}()
}

// recovered reports a panic in a handler to the log and to the user.
func (b *Bot) recovered(log zerolog.Logger, tell func(string)) {
	p := recover()
	if p == nil {
		return
	}
	log.Error().Interface("panic", p).Bytes("stack", debug.Stack()).Msg("handler panicked")
	tell(":warning: Internal error in risk-reset-bot; nothing more will happen for this action. The error was logged.")
}
