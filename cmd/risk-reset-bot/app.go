package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"risk-reset-bot/authz"
	"risk-reset-bot/bot"
	"risk-reset-bot/cloudflare"
	"risk-reset-bot/config"
	"risk-reset-bot/internal/buildinfo"
	"risk-reset-bot/internal/logging"
	"risk-reset-bot/request"
)

// option adjusts the wiring for tests: a fake clock, a faster sweep.
type option func(*appOptions)

type appOptions struct {
	now           func() time.Time
	sweepInterval time.Duration
	cfOptions     []cloudflare.Option
}

// app is the bot wired to its configuration.
type app struct {
	log zerolog.Logger
	bot *bot.Bot
}

func newApp(environ []string, out io.Writer, opts ...option) (*app, error) {
	o := appOptions{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := config.Load(environ)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	log, err := logging.New(out, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return nil, fmt.Errorf("logging: %w", err)
	}
	for _, w := range cfg.Warnings() {
		log.Warn().Msg(w)
	}
	cf, err := newCloudflare(cfg, o.cfOptions)
	if err != nil {
		return nil, err
	}
	botCfg := bot.Config{
		BotToken: cfg.SlackBotToken, AppToken: cfg.SlackAppToken, APIURL: cfg.SlackAPIURL,
		AuditChannelID: cfg.AuditChannelID, RequestTTL: cfg.RequestTTL, SweepInterval: o.sweepInterval,
		RequiredApprovals: cfg.RequiredApprovals, RequireReason: cfg.RequireReason,
	}
	policy := authz.New(authz.Config{
		Requesters: cfg.RequesterIDs, Approvers: cfg.ApproverIDs, Channels: cfg.AllowedChannelIDs,
	}, bot.GroupMembers{API: bot.NewSlackClient(botCfg)}, cfg.GroupCacheTTL, o.now)
	// Ended requests are kept a day, so late clicks get "already approved
	// by" rather than "unknown request".
	store := request.NewMemStore(o.now, 24*time.Hour)
	log.Info().Object("config", cfg).Msg("starting risk-reset-bot")
	return &app{log: log, bot: bot.New(botCfg, cf, policy, store, log, o.now)}, nil
}

func newCloudflare(cfg *config.Config, extra []cloudflare.Option) (*cloudflare.Client, error) {
	auth := cloudflare.TokenAuth(cfg.CloudflareAPIToken)
	if cfg.CloudflareAuthScheme() == "key" {
		auth = cloudflare.KeyAuth(cfg.CloudflareAPIEmail, cfg.CloudflareAPIKey)
	}
	opts := append([]cloudflare.Option{
		cloudflare.WithBaseURL(cfg.CloudflareAPIURL),
		cloudflare.WithUserAgent("risk-reset-bot/" + buildinfo.Version),
	}, extra...)
	c, err := cloudflare.NewClient(cfg.CloudflareAccountID, auth, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloudflare client: %w", err)
	}
	return c, nil
}

// Run serves until ctx ends.
func (a *app) Run(ctx context.Context) error {
	err := a.bot.Run(ctx)
	if err != nil {
		a.log.Error().Err(err).Msg("stopped")
		return err
	}
	a.log.Info().Msg("stopped")
	return nil
}

func withClock(now func() time.Time) option { return func(o *appOptions) { o.now = now } }

func withSweepInterval(d time.Duration) option {
	return func(o *appOptions) { o.sweepInterval = d }
}

func withCloudflareOptions(opts ...cloudflare.Option) option {
	return func(o *appOptions) { o.cfOptions = append(o.cfOptions, opts...) }
}
