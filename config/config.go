// Package config reads and checks the bot's settings from the environment.
//
// Load reports every problem at once, one line per variable, and never puts a
// secret into an error message. Secrets may come from files (VAR_FILE) so that
// Docker and Kubernetes secrets can be mounted instead of exported.
package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is the validated configuration. Secret fields hold the real values;
// print or log a Config only through String or MarshalZerologObject.
type Config struct {
	SlackBotToken string
	SlackAppToken string
	// SlackAPIURL always ends with "/", as slack-go expects.
	SlackAPIURL string

	// CloudflareAccountID is 32 lowercase hexadecimal characters.
	CloudflareAccountID string
	// Exactly one scheme is set: CloudflareAPIToken, or CloudflareAPIEmail
	// with CloudflareAPIKey.
	CloudflareAPIToken string
	CloudflareAPIEmail string
	CloudflareAPIKey   string
	// CloudflareAPIURL never ends with "/".
	CloudflareAPIURL string

	// RequesterIDs and ApproverIDs hold Slack user (U…, W…) and user group
	// (S…) IDs. An empty RequesterIDs means nobody may request.
	RequesterIDs []string
	ApproverIDs  []string
	// AllowedChannelIDs empty means the command works in every channel.
	AllowedChannelIDs []string
	AuditChannelID    string

	RequestTTL time.Duration
	// RequiredApprovals is how many distinct approvers must approve when
	// ApproverIDs is set.
	RequiredApprovals int
	// RequireReason makes the requester give a reason; without one in the
	// command, the bot asks for it in a modal.
	RequireReason bool
	// GroupCacheTTL is how long user-group memberships are cached; 0 disables
	// the cache.
	GroupCacheTTL time.Duration

	LogLevel  string
	LogFormat string
	HTTPAddr  string
	// RedisURL, when set, keeps requests in Redis so that replicas and
	// restarts share them. It may hold a password, so it is a secret.
	RedisURL string
	// ShutdownTimeout bounds how long in-flight resets may take to finish
	// after SIGTERM.
	ShutdownTimeout time.Duration
}

// Cloudflare authentication schemes returned by CloudflareAuthScheme.
const (
	AuthSchemeToken = "token"
	AuthSchemeKey   = "key"
)

// CloudflareAuthScheme tells which Cloudflare credentials are set:
// AuthSchemeToken (an API token) or AuthSchemeKey (legacy email and global key).
func (c *Config) CloudflareAuthScheme() string {
	if c.CloudflareAPIToken != "" {
		return AuthSchemeToken
	}
	return AuthSchemeKey
}

// Warnings lists settings that are valid but probably not what the operator
// wants. They are meant to be logged at start.
func (c *Config) Warnings() []string {
	var w []string
	if len(c.RequesterIDs) == 0 {
		w = append(w, "REQUESTER_IDS is empty: nobody can request a risk reset (deny by default)")
	}
	if len(c.ApproverIDs) == 0 {
		w = append(w, "APPROVER_IDS is empty: requesters confirm their own requests, no second person approves")
	}
	if c.CloudflareAuthScheme() == AuthSchemeKey {
		w = append(w, "CLOUDFLARE_API_KEY is a legacy global API key with full account access; an API token with only the needed permissions is safer")
	}
	for _, u := range []struct{ name, value string }{
		{varSlackAPIURL, c.SlackAPIURL},
		{varCloudflareAPIURL, c.CloudflareAPIURL},
	} {
		if strings.HasPrefix(u.value, "http://") {
			w = append(w, u.name+" uses http://: credentials are sent without TLS")
		}
	}
	return w
}

// rawEnv is the environment as strings. Everything is parsed as a string and
// checked afterwards, so one bad value never hides the problems of others.
type rawEnv struct {
	SlackBotToken          string `env:"SLACK_BOT_TOKEN"`
	SlackBotTokenFile      string `env:"SLACK_BOT_TOKEN_FILE"`
	SlackAppToken          string `env:"SLACK_APP_TOKEN"`
	SlackAppTokenFile      string `env:"SLACK_APP_TOKEN_FILE"`
	SlackAPIURL            string `env:"SLACK_API_URL" envDefault:"https://slack.com/api/"`
	CloudflareAccountID    string `env:"CLOUDFLARE_ACCOUNT_ID"`
	CloudflareAPIToken     string `env:"CLOUDFLARE_API_TOKEN"`
	CloudflareAPITokenFile string `env:"CLOUDFLARE_API_TOKEN_FILE"`
	CloudflareAPIEmail     string `env:"CLOUDFLARE_API_EMAIL"`
	CloudflareAPIKey       string `env:"CLOUDFLARE_API_KEY"`
	CloudflareAPIKeyFile   string `env:"CLOUDFLARE_API_KEY_FILE"`
	CloudflareAPIURL       string `env:"CLOUDFLARE_API_URL" envDefault:"https://api.cloudflare.com/client/v4"`
	RequesterIDs           string `env:"REQUESTER_IDS"`
	ApproverIDs            string `env:"APPROVER_IDS"`
	AllowedChannelIDs      string `env:"ALLOWED_CHANNEL_IDS"`
	AuditChannelID         string `env:"AUDIT_CHANNEL_ID"`
	RequestTTL             string `env:"REQUEST_TTL" envDefault:"30m"`
	RequiredApprovals      string `env:"REQUIRED_APPROVALS" envDefault:"1"`
	RequireReason          string `env:"REQUIRE_REASON" envDefault:"true"`
	GroupCacheTTL          string `env:"GROUP_CACHE_TTL" envDefault:"1m"`
	LogLevel               string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat              string `env:"LOG_FORMAT" envDefault:"json"`
	HTTPAddr               string `env:"HTTP_ADDR" envDefault:":8080"`
	ShutdownTimeout        string `env:"SHUTDOWN_TIMEOUT" envDefault:"60s"`
	RedisURL               string `env:"REDIS_URL"`
	RedisURLFile           string `env:"REDIS_URL_FILE"`
}

// Variable names used in messages; they match the env tags above.
const (
	varSlackBotToken       = "SLACK_BOT_TOKEN"
	varSlackAppToken       = "SLACK_APP_TOKEN"
	varSlackAPIURL         = "SLACK_API_URL"
	varCloudflareAccountID = "CLOUDFLARE_ACCOUNT_ID"
	varCloudflareAPIToken  = "CLOUDFLARE_API_TOKEN"
	varCloudflareAPIEmail  = "CLOUDFLARE_API_EMAIL"
	varCloudflareAPIKey    = "CLOUDFLARE_API_KEY"
	varCloudflareAPIURL    = "CLOUDFLARE_API_URL"
	varRequesterIDs        = "REQUESTER_IDS"
	varApproverIDs         = "APPROVER_IDS"
	varAllowedChannelIDs   = "ALLOWED_CHANNEL_IDS"
	varAuditChannelID      = "AUDIT_CHANNEL_ID"
	varRequestTTL          = "REQUEST_TTL"
	varRequiredApprovals   = "REQUIRED_APPROVALS"
	varRequireReason       = "REQUIRE_REASON"
	varGroupCacheTTL       = "GROUP_CACHE_TTL"
	varLogLevel            = "LOG_LEVEL"
	varLogFormat           = "LOG_FORMAT"
	varHTTPAddr            = "HTTP_ADDR"
	varShutdownTimeout     = "SHUTDOWN_TIMEOUT"
	varRedisURL            = "REDIS_URL"
)

const maxRequestTTL = 24 * time.Hour

// minRequestTTL keeps a card open long enough for anyone to act on it.
const minRequestTTL = time.Minute

// Load builds a Config from environ, given in the form of os.Environ. It does
// not read the process environment itself. When anything is wrong it returns
// a *ValidationError listing every problem.
func Load(environ []string) (*Config, error) {
	var raw rawEnv
	opts := env.Options{Environment: environMap(environ)}
	if err := env.ParseWithOptions(&raw, opts); err != nil {
		return nil, fmt.Errorf("config: reading environment: %w", err)
	}
	var v validator
	cfg := v.build(raw)
	if len(v.problems) > 0 {
		return nil, &ValidationError{Problems: v.problems}
	}
	return cfg, nil
}

// environMap turns KEY=value entries into a map. Values are trimmed, so a
// variable holding only whitespace counts as unset; a later entry for the same
// key wins, as with exec.Cmd. The map is never nil, because env falls back to
// the process environment when it is.
func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		m[k] = strings.TrimSpace(v)
	}
	return m
}

func (v *validator) build(raw rawEnv) *Config {
	c := &Config{
		SlackBotToken:       v.slackToken(varSlackBotToken, raw.SlackBotToken, raw.SlackBotTokenFile, "xoxb-"),
		SlackAppToken:       v.slackToken(varSlackAppToken, raw.SlackAppToken, raw.SlackAppTokenFile, "xapp-"),
		SlackAPIURL:         withTrailingSlash(v.baseURL(varSlackAPIURL, raw.SlackAPIURL)),
		CloudflareAccountID: v.accountID(raw.CloudflareAccountID),
	}
	v.cloudflareAuth(c, raw)
	c.CloudflareAPIURL = strings.TrimRight(v.cloudflareURL(raw.CloudflareAPIURL), "/")
	c.RequesterIDs = v.idList(varRequesterIDs, raw.RequesterIDs, principalIDPattern, principalIDKind)
	c.ApproverIDs = v.idList(varApproverIDs, raw.ApproverIDs, principalIDPattern, principalIDKind)
	c.AllowedChannelIDs = v.idList(varAllowedChannelIDs, raw.AllowedChannelIDs, channelIDPattern, channelIDKind)
	c.AuditChannelID = v.channelID(varAuditChannelID, raw.AuditChannelID)
	c.RequestTTL = v.requestTTL(raw.RequestTTL)
	c.RequiredApprovals = v.requiredApprovals(raw.RequiredApprovals, c.ApproverIDs)
	c.RequireReason = v.boolean(varRequireReason, raw.RequireReason)
	c.GroupCacheTTL = v.groupCacheTTL(raw.GroupCacheTTL)
	c.LogLevel = v.oneOf(varLogLevel, raw.LogLevel, "trace", "debug", "info", "warn", "error")
	c.LogFormat = v.oneOf(varLogFormat, raw.LogFormat, "json", "console")
	c.HTTPAddr = v.hostPort(varHTTPAddr, raw.HTTPAddr)
	c.ShutdownTimeout = v.shutdownTimeout(raw.ShutdownTimeout)
	c.RedisURL = v.redisURL(raw.RedisURL, raw.RedisURLFile)
	return c
}

func withTrailingSlash(u string) string {
	if u == "" || strings.HasSuffix(u, "/") {
		return u
	}
	return u + "/"
}

func (v *validator) cloudflareAuth(c *Config, raw rawEnv) {
	token, hasToken := v.secret(varCloudflareAPIToken, raw.CloudflareAPIToken, raw.CloudflareAPITokenFile)
	key, hasKey := v.secret(varCloudflareAPIKey, raw.CloudflareAPIKey, raw.CloudflareAPIKeyFile)
	hasEmail := raw.CloudflareAPIEmail != ""
	email := ""
	if hasEmail {
		email = v.email(varCloudflareAPIEmail, raw.CloudflareAPIEmail)
	}

	switch {
	case hasToken && (hasEmail || hasKey):
		v.add(varCloudflareAPIToken, "set either %s or %s+%s, not both",
			varCloudflareAPIToken, varCloudflareAPIEmail, varCloudflareAPIKey)
	case hasToken:
		c.CloudflareAPIToken = token.value
	case hasEmail && hasKey:
		c.CloudflareAPIEmail = email
		c.CloudflareAPIKey = key.value
	case hasEmail:
		v.add(varCloudflareAPIKey, "required when %s is set (or %s_FILE)", varCloudflareAPIEmail, varCloudflareAPIKey)
	case hasKey:
		v.add(varCloudflareAPIEmail, "required when %s is set", varCloudflareAPIKey)
	default:
		v.add(varCloudflareAPIToken, "required (or %s_FILE, or %s with %s)",
			varCloudflareAPIToken, varCloudflareAPIEmail, varCloudflareAPIKey)
	}
}
