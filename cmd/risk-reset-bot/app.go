package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"risk-reset-bot/authz"
	"risk-reset-bot/bot"
	"risk-reset-bot/cloudflare"
	"risk-reset-bot/config"
	"risk-reset-bot/internal/buildinfo"
	"risk-reset-bot/internal/logging"
	"risk-reset-bot/internal/metrics"
	"risk-reset-bot/redisstore"
	"risk-reset-bot/request"
)

// option adjusts the wiring for tests: a fake clock, a faster sweep.
type option func(*appOptions)

type appOptions struct {
	now           func() time.Time
	sweepInterval time.Duration
	cfOptions     []cloudflare.Option
	listening     func(addr string)
	redisPrefix   string
	pingTimeout   time.Duration
}

func withClock(now func() time.Time) option { return func(o *appOptions) { o.now = now } }

func withSweepInterval(d time.Duration) option {
	return func(o *appOptions) { o.sweepInterval = d }
}

func withCloudflareOptions(opts ...cloudflare.Option) option {
	return func(o *appOptions) { o.cfOptions = append(o.cfOptions, opts...) }
}

// withRedisPrefix namespaces Redis keys, so tests sharing one Redis do not
// see each other's requests.
func withRedisPrefix(p string) option { return func(o *appOptions) { o.redisPrefix = p } }

// withPingTimeout shortens how long the bot waits for Slack's ping.
func withPingTimeout(d time.Duration) option { return func(o *appOptions) { o.pingTimeout = d } }

// withListening reports the address the health and metrics server bound,
// for tests that ask for port 0.
func withListening(f func(addr string)) option { return func(o *appOptions) { o.listening = f } }

// app is the bot wired to its configuration.
type app struct {
	log       zerolog.Logger
	bot       *bot.Bot
	store     request.Store
	metrics   *metrics.Metrics
	httpAddr  string
	listening func(string)
}

func newApp(environ []string, out io.Writer, opts ...option) (*app, error) {
	o := appOptions{now: time.Now, listening: func(string) {}}
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
	store, err := openStore(cfg, o, log)
	if err != nil {
		return nil, err
	}
	m := metrics.New(buildinfo.Version, pendingGauge(store))
	cf, err := newCloudflare(cfg, m, o.cfOptions)
	if err != nil {
		return nil, err
	}
	authWatch := bot.NewAuthWatch()
	botCfg := bot.Config{
		BotToken: cfg.SlackBotToken, AppToken: cfg.SlackAppToken, APIURL: cfg.SlackAPIURL,
		AuditChannelID: cfg.AuditChannelID, RequestTTL: cfg.RequestTTL, SweepInterval: o.sweepInterval,
		RequiredApprovals: cfg.RequiredApprovals, RequireReason: cfg.RequireReason,
		ShutdownTimeout: cfg.ShutdownTimeout, PingTimeout: o.pingTimeout, SharedStore: cfg.RedisURL != "",
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: m.SlackTransport(pooledTransport(), authWatch.Observe)},
	}
	policy := authz.New(authz.Config{
		Requesters: cfg.RequesterIDs, Approvers: cfg.ApproverIDs, Channels: cfg.AllowedChannelIDs,
	}, bot.GroupMembers{API: bot.NewSlackClient(botCfg)}, cfg.GroupCacheTTL, o.now)
	log.Info().Object("config", cfg).Msg("starting risk-reset-bot")
	b := bot.New(botCfg, bot.Deps{Cloudflare: cf, Policy: policy, Store: store, Log: log, Metrics: m, Now: o.now, AuthWatch: authWatch})
	return &app{log: log, bot: b, store: store, metrics: m, httpAddr: cfg.HTTPAddr, listening: o.listening}, nil
}

func newCloudflare(cfg *config.Config, m *metrics.Metrics, extra []cloudflare.Option) (*cloudflare.Client, error) {
	auth := cloudflare.TokenAuth(cfg.CloudflareAPIToken)
	if cfg.CloudflareAuthScheme() == config.AuthSchemeKey {
		auth = cloudflare.KeyAuth(cfg.CloudflareAPIEmail, cfg.CloudflareAPIKey)
	}
	opts := append([]cloudflare.Option{
		cloudflare.WithBaseURL(cfg.CloudflareAPIURL),
		cloudflare.WithUserAgent("risk-reset-bot/" + buildinfo.Version),
		cloudflare.WithHTTPClient(&http.Client{Timeout: 30 * time.Second, Transport: m.CloudflareTransport(pooledTransport())}),
	}, extra...)
	c, err := cloudflare.NewClient(cfg.CloudflareAccountID, auth, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloudflare client: %w", err)
	}
	return c, nil
}

// retention is how long ended requests are kept, so late clicks get
// "already approved by" rather than "unknown request".
const retention = 24 * time.Hour

// openStore returns the Redis store when REDIS_URL is set (replicas and
// restarts share requests), else the in-memory one.
func openStore(cfg *config.Config, o appOptions, log zerolog.Logger) (request.Store, error) {
	if cfg.RedisURL == "" {
		return request.NewMemStore(o.now, retention), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.Open(ctx, cfg.RedisURL, redisstore.Options{Prefix: o.redisPrefix, Retention: retention, Now: o.now, Log: &log})
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return s, nil
}

// pooledTransport keeps enough idle connections per host for the bot's
// concurrent handlers: the default two would make most calls under load
// pay a new TLS handshake.
func pooledTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	return t
}

// pendingGauge reads the number of pending requests for the metrics scrape.
func pendingGauge(store request.Store) func() float64 {
	return func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := store.CountPending(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}
}

// Run serves health, readiness and metrics, and the bot, until ctx ends.
func (a *app) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.httpAddr)
	if err != nil {
		return fmt.Errorf("health and metrics listener on HTTP_ADDR %s: %w", a.httpAddr, err)
	}
	a.listening(ln.Addr().String())
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error().Err(err).Msg("health and metrics server stopped")
		}
	}()
	a.log.Info().Str("addr", ln.Addr().String()).Msg("serving /healthz, /readyz and /metrics")

	err = a.bot.Run(ctx)
	if c, ok := a.store.(io.Closer); ok {
		_ = c.Close()
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	if err != nil {
		a.log.Error().Err(err).Msg("stopped")
		return err
	}
	a.log.Info().Msg("stopped")
	return nil
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.bot.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", a.metrics.Handler())
	return mux
}
