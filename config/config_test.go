package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"risk-reset-bot/config"
)

const (
	botToken  = "xoxb-1111-2222-bottokenvalue"
	appToken  = "xapp-1-A111-2222-apptokenvalue"
	accountID = "0123456789abcdef0123456789ABCDEF"
	cfToken   = "cf-token-value-0123456789012345678901"
	cfEmail   = "soc@example.com"
	cfKey     = "0123456789abcdef0123456789abcdef01234"
)

// tokenEnv is the smallest valid environment, using a Cloudflare API token.
func tokenEnv() map[string]string {
	return map[string]string{
		"SLACK_BOT_TOKEN":       botToken,
		"SLACK_APP_TOKEN":       appToken,
		"CLOUDFLARE_ACCOUNT_ID": accountID,
		"CLOUDFLARE_API_TOKEN":  cfToken,
	}
}

// with returns env changed by pairs of name and value; an empty value removes
// the variable.
func with(env map[string]string, pairs ...string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			delete(out, pairs[i])
		} else {
			out[pairs[i]] = pairs[i+1]
		}
	}
	return out
}

func environ(env map[string]string) []string {
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	slices.Sort(list)
	return list
}

func mustLoad(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(environ(env))
	if err != nil {
		t.Fatalf("Load: unexpected error:\n%v", err)
	}
	return cfg
}

// problems loads env, expecting a *ValidationError, and returns its problems.
func problems(t *testing.T, env map[string]string) []config.Problem {
	t.Helper()
	cfg, err := config.Load(environ(env))
	if err == nil {
		t.Fatalf("Load succeeded with %v, want a validation error", cfg)
	}
	var verr *config.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Load error is %T (%v), want *config.ValidationError", err, err)
	}
	if len(verr.Problems) == 0 {
		t.Fatal("ValidationError has no problems")
	}
	return verr.Problems
}

func vars(ps []config.Problem) []string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Var)
	}
	return names
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadTokenSchemeWithDefaults(t *testing.T) {
	cfg := mustLoad(t, tokenEnv())

	checks := []struct{ name, got, want string }{
		{"SlackBotToken", cfg.SlackBotToken, botToken},
		{"SlackAppToken", cfg.SlackAppToken, appToken},
		{"SlackAPIURL", cfg.SlackAPIURL, "https://slack.com/api/"},
		{"CloudflareAccountID", cfg.CloudflareAccountID, strings.ToLower(accountID)},
		{"CloudflareAPIToken", cfg.CloudflareAPIToken, cfToken},
		{"CloudflareAPIEmail", cfg.CloudflareAPIEmail, ""},
		{"CloudflareAPIKey", cfg.CloudflareAPIKey, ""},
		{"CloudflareAPIURL", cfg.CloudflareAPIURL, "https://api.cloudflare.com/client/v4"},
		{"CloudflareAuthScheme", cfg.CloudflareAuthScheme(), config.AuthSchemeToken},
		{"AuditChannelID", cfg.AuditChannelID, ""},
		{"LogLevel", cfg.LogLevel, "info"},
		{"LogFormat", cfg.LogFormat, "json"},
		{"HTTPAddr", cfg.HTTPAddr, ":8080"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if cfg.RequestTTL != 30*time.Minute {
		t.Errorf("RequestTTL = %v, want 30m", cfg.RequestTTL)
	}
	if cfg.GroupCacheTTL != time.Minute {
		t.Errorf("GroupCacheTTL = %v, want 1m", cfg.GroupCacheTTL)
	}
	if cfg.RequiredApprovals != 1 || !cfg.RequireReason {
		t.Errorf("RequiredApprovals, RequireReason = %d, %v; want 1, true", cfg.RequiredApprovals, cfg.RequireReason)
	}
	if cfg.RequesterIDs != nil || cfg.ApproverIDs != nil || cfg.AllowedChannelIDs != nil {
		t.Errorf("ID lists = %v %v %v, want all empty", cfg.RequesterIDs, cfg.ApproverIDs, cfg.AllowedChannelIDs)
	}
}

func TestLoadKeyScheme(t *testing.T) {
	cfg := mustLoad(t, with(tokenEnv(),
		"CLOUDFLARE_API_TOKEN", "",
		"CLOUDFLARE_API_EMAIL", cfEmail,
		"CLOUDFLARE_API_KEY", cfKey,
	))
	if got := cfg.CloudflareAuthScheme(); got != config.AuthSchemeKey {
		t.Errorf("CloudflareAuthScheme() = %q, want %q", got, config.AuthSchemeKey)
	}
	if cfg.CloudflareAPIEmail != cfEmail || cfg.CloudflareAPIKey != cfKey || cfg.CloudflareAPIToken != "" {
		t.Errorf("email, key, token = %q, %q, %q; want %q, %q, empty",
			cfg.CloudflareAPIEmail, cfg.CloudflareAPIKey, cfg.CloudflareAPIToken, cfEmail, cfKey)
	}
}

func TestLoadAllSettings(t *testing.T) {
	cfg := mustLoad(t, with(tokenEnv(),
		"SLACK_API_URL", "http://127.0.0.1:9999/api",
		"CLOUDFLARE_API_URL", "https://cf.test/client/v4/",
		"REQUESTER_IDS", " U0123ABC, S0GROUP1 ,,W0ENTERPRISE,U0123ABC",
		"APPROVER_IDS", "U0LEAD01",
		"ALLOWED_CHANNEL_IDS", "C0SOC,G0PRIVATE",
		"AUDIT_CHANNEL_ID", "C0AUDIT",
		"REQUEST_TTL", "2h",
		"GROUP_CACHE_TTL", "0",
		"LOG_LEVEL", "DEBUG",
		"LOG_FORMAT", "console",
		"HTTP_ADDR", "127.0.0.1:0",
	))
	if cfg.SlackAPIURL != "http://127.0.0.1:9999/api/" {
		t.Errorf("SlackAPIURL = %q, want a trailing slash added", cfg.SlackAPIURL)
	}
	if cfg.CloudflareAPIURL != "https://cf.test/client/v4" {
		t.Errorf("CloudflareAPIURL = %q, want the trailing slash removed", cfg.CloudflareAPIURL)
	}
	if want := []string{"U0123ABC", "S0GROUP1", "W0ENTERPRISE"}; !slices.Equal(cfg.RequesterIDs, want) {
		t.Errorf("RequesterIDs = %q, want %q (trimmed, empties and duplicates dropped)", cfg.RequesterIDs, want)
	}
	if want := []string{"U0LEAD01"}; !slices.Equal(cfg.ApproverIDs, want) {
		t.Errorf("ApproverIDs = %q, want %q", cfg.ApproverIDs, want)
	}
	if want := []string{"C0SOC", "G0PRIVATE"}; !slices.Equal(cfg.AllowedChannelIDs, want) {
		t.Errorf("AllowedChannelIDs = %q, want %q", cfg.AllowedChannelIDs, want)
	}
	if cfg.AuditChannelID != "C0AUDIT" {
		t.Errorf("AuditChannelID = %q, want C0AUDIT", cfg.AuditChannelID)
	}
	if cfg.RequestTTL != 2*time.Hour || cfg.GroupCacheTTL != 0 {
		t.Errorf("RequestTTL, GroupCacheTTL = %v, %v; want 2h, 0", cfg.RequestTTL, cfg.GroupCacheTTL)
	}
	if cfg.LogLevel != "debug" || cfg.LogFormat != "console" || cfg.HTTPAddr != "127.0.0.1:0" {
		t.Errorf("LogLevel, LogFormat, HTTPAddr = %q, %q, %q", cfg.LogLevel, cfg.LogFormat, cfg.HTTPAddr)
	}
}

func TestLoadRequiredApprovalsWithGroupApprovers(t *testing.T) {
	// A group may hold any number of leads, so a quorum above the users
	// listed is accepted when a group is listed too.
	cfg := mustLoad(t, with(tokenEnv(), "REQUIRED_APPROVALS", "3", "APPROVER_IDS", "U0LEAD01,S0LEADS"))
	if cfg.RequiredApprovals != 3 {
		t.Errorf("RequiredApprovals = %d, want 3", cfg.RequiredApprovals)
	}
}

func TestLoadTreatsBlankValuesAsUnset(t *testing.T) {
	cfg := mustLoad(t, with(tokenEnv(), "REQUEST_TTL", "   ", "LOG_LEVEL", " warn "))
	if cfg.RequestTTL != 30*time.Minute {
		t.Errorf("RequestTTL = %v, want the 30m default for a blank value", cfg.RequestTTL)
	}
	if cfg.LogLevel != "warn" {
		t.Errorf("LogLevel = %q, want warn", cfg.LogLevel)
	}
}

func TestLoadEmptyEnvironment(t *testing.T) {
	// Load must not fall back to the process environment.
	t.Setenv("SLACK_BOT_TOKEN", botToken)

	_, err := config.Load(nil)
	var verr *config.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Load(nil) error = %v, want a *config.ValidationError", err)
	}
	want := []string{
		"SLACK_BOT_TOKEN: required (or SLACK_BOT_TOKEN_FILE)",
		"SLACK_APP_TOKEN: required (or SLACK_APP_TOKEN_FILE)",
		"CLOUDFLARE_ACCOUNT_ID: required",
		"CLOUDFLARE_API_TOKEN: required (or CLOUDFLARE_API_TOKEN_FILE, or CLOUDFLARE_API_EMAIL with CLOUDFLARE_API_KEY)",
	}
	if got := strings.Split(verr.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("Error() lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := vars(verr.Problems); !slices.Equal(got, []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN"}) {
		t.Errorf("problem variables = %q", got)
	}
}

func TestLoadReportsOneProblem(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		wantMsg string // substring of "VAR: message"
	}{
		{"bot token with app prefix", with(tokenEnv(), "SLACK_BOT_TOKEN", "xapp-1-A111-2222-other"),
			"SLACK_BOT_TOKEN", `SLACK_BOT_TOKEN: must start with xoxb- (got a value starting with "xapp-")`},
		{"app token with bot prefix", with(tokenEnv(), "SLACK_APP_TOKEN", "xoxb-1111-2222-other"),
			"SLACK_APP_TOKEN", `SLACK_APP_TOKEN: must start with xapp- (got a value starting with "xoxb-")`},
		{"user token", with(tokenEnv(), "SLACK_BOT_TOKEN", "xoxp-1111-2222-other"),
			"SLACK_BOT_TOKEN", `(got a value starting with "xoxp-")`},
		{"cloudflare token in slack variable", with(tokenEnv(), "SLACK_BOT_TOKEN", "Abc12-secretpart-0123456789"),
			"SLACK_BOT_TOKEN", "must start with xoxb- (got a value that is not a Slack token)"},
		{"short wrong token", with(tokenEnv(), "SLACK_BOT_TOKEN", "changeme"),
			"SLACK_BOT_TOKEN", "must start with xoxb- (got a value too short to be a token)"},
		{"token with inner space", with(tokenEnv(), "SLACK_BOT_TOKEN", "xoxb-11 22"),
			"SLACK_BOT_TOKEN", "contains whitespace"},
		{"account id 31 characters", with(tokenEnv(), "CLOUDFLARE_ACCOUNT_ID", accountID[:31]),
			"CLOUDFLARE_ACCOUNT_ID", "must be 32 hexadecimal characters (got 31 characters)"},
		{"account id not hex", with(tokenEnv(), "CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdeg"),
			"CLOUDFLARE_ACCOUNT_ID", "not all hexadecimal"},
		{"both cloudflare schemes", with(tokenEnv(), "CLOUDFLARE_API_EMAIL", cfEmail, "CLOUDFLARE_API_KEY", cfKey),
			"CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_TOKEN: set either CLOUDFLARE_API_TOKEN or CLOUDFLARE_API_EMAIL+CLOUDFLARE_API_KEY, not both"},
		{"token and key", with(tokenEnv(), "CLOUDFLARE_API_KEY", cfKey),
			"CLOUDFLARE_API_TOKEN", "not both"},
		{"no cloudflare scheme", with(tokenEnv(), "CLOUDFLARE_API_TOKEN", ""),
			"CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_TOKEN: required"},
		{"email without key", with(tokenEnv(), "CLOUDFLARE_API_TOKEN", "", "CLOUDFLARE_API_EMAIL", cfEmail),
			"CLOUDFLARE_API_KEY", "CLOUDFLARE_API_KEY: required when CLOUDFLARE_API_EMAIL is set"},
		{"key without email", with(tokenEnv(), "CLOUDFLARE_API_TOKEN", "", "CLOUDFLARE_API_KEY", cfKey),
			"CLOUDFLARE_API_EMAIL", "CLOUDFLARE_API_EMAIL: required when CLOUDFLARE_API_KEY is set"},
		{"bad email", with(tokenEnv(), "CLOUDFLARE_API_TOKEN", "", "CLOUDFLARE_API_EMAIL", "soc", "CLOUDFLARE_API_KEY", cfKey),
			"CLOUDFLARE_API_EMAIL", `must be an email address such as soc@example.com (got "soc")`},
		{"bad request TTL", with(tokenEnv(), "REQUEST_TTL", "soon"),
			"REQUEST_TTL", `REQUEST_TTL: not a duration (got "soon"); use a Go duration such as 30m, 1h or 90s`},
		{"request TTL without unit", with(tokenEnv(), "REQUEST_TTL", "30"),
			"REQUEST_TTL", "not a duration"},
		{"zero request TTL", with(tokenEnv(), "REQUEST_TTL", "0s"),
			"REQUEST_TTL", "must be greater than 0"},
		{"request TTL too short to click", with(tokenEnv(), "REQUEST_TTL", "5s"),
			"REQUEST_TTL", `must be at least 1m, so an approver has time to click (got "5s")`},
		{"request TTL over a day", with(tokenEnv(), "REQUEST_TTL", "25h"),
			"REQUEST_TTL", `must be at most 24h (got "25h")`},
		{"required approvals zero", with(tokenEnv(), "REQUIRED_APPROVALS", "0", "APPROVER_IDS", "S0LEADS"),
			"REQUIRED_APPROVALS", `REQUIRED_APPROVALS: must be a whole number from 1 to 5 (got "0")`},
		{"required approvals not a number", with(tokenEnv(), "REQUIRED_APPROVALS", "two", "APPROVER_IDS", "S0LEADS"),
			"REQUIRED_APPROVALS", "must be a whole number"},
		{"required approvals without approvers", with(tokenEnv(), "REQUIRED_APPROVALS", "2"),
			"REQUIRED_APPROVALS", "APPROVER_IDS is empty"},
		{"required approvals above the approvers listed", with(tokenEnv(), "REQUIRED_APPROVALS", "3", "APPROVER_IDS", "U0LEAD1,U0LEAD2"),
			"REQUIRED_APPROVALS", "REQUIRED_APPROVALS: is 3 but APPROVER_IDS names only 2 users and no user group, so no request could ever be approved"},
		{"require reason not a bool", with(tokenEnv(), "REQUIRE_REASON", "maybe"),
			"REQUIRE_REASON", `REQUIRE_REASON: must be true or false (got "maybe")`},
		{"redis URL with another scheme", with(tokenEnv(), "REDIS_URL", "http://user:hunter2@redis:6379"),
			"REDIS_URL", "must be a redis:// or rediss:// URL"},
		{"Cloudflare URL with user info", with(tokenEnv(), "CLOUDFLARE_API_URL", "https://user:hunter2@api.cloudflare.test/client/v4"),
			"CLOUDFLARE_API_URL", `CLOUDFLARE_API_URL: must not carry a user name or password (got "https://redacted@api.cloudflare.test/client/v4")`},
		{"zero shutdown timeout", with(tokenEnv(), "SHUTDOWN_TIMEOUT", "0s"),
			"SHUTDOWN_TIMEOUT", "must be greater than 0"},
		{"bad group cache TTL", with(tokenEnv(), "GROUP_CACHE_TTL", "forever"),
			"GROUP_CACHE_TTL", `GROUP_CACHE_TTL: not a duration (got "forever")`},
		{"negative group cache TTL", with(tokenEnv(), "GROUP_CACHE_TTL", "-1s"),
			"GROUP_CACHE_TTL", "must not be negative"},
		{"requester name instead of ID", with(tokenEnv(), "REQUESTER_IDS", "U0123ABC,alice"),
			"REQUESTER_IDS", `REQUESTER_IDS: "alice" is not a Slack user (U…, W…) or user group (S…) ID`},
		{"approver lower-case ID", with(tokenEnv(), "APPROVER_IDS", "u0123abc"),
			"APPROVER_IDS", `APPROVER_IDS: "u0123abc" is not a Slack user`},
		{"approver channel ID", with(tokenEnv(), "APPROVER_IDS", "C0SOC"),
			"APPROVER_IDS", `"C0SOC" is not a Slack user`},
		{"allowed channel is a user", with(tokenEnv(), "ALLOWED_CHANNEL_IDS", "C0SOC,U0123ABC"),
			"ALLOWED_CHANNEL_IDS", `ALLOWED_CHANNEL_IDS: "U0123ABC" is not a Slack channel ID (C…, G…)`},
		{"audit channel by name", with(tokenEnv(), "AUDIT_CHANNEL_ID", "#soc-audit"),
			"AUDIT_CHANNEL_ID", `AUDIT_CHANNEL_ID: "#soc-audit" is not a Slack channel ID`},
		{"relative Slack URL", with(tokenEnv(), "SLACK_API_URL", "slack.com/api"),
			"SLACK_API_URL", "SLACK_API_URL: must be an absolute http:// or https:// URL"},
		{"ftp Cloudflare URL", with(tokenEnv(), "CLOUDFLARE_API_URL", "ftp://cf.test/v4"),
			"CLOUDFLARE_API_URL", `must be an absolute http:// or https:// URL (got "ftp://cf.test/v4")`},
		{"Cloudflare URL with query", with(tokenEnv(), "CLOUDFLARE_API_URL", "https://cf.test/v4?x=1"),
			"CLOUDFLARE_API_URL", `must not have a query or fragment (got "https://cf.test/v4")`},
		{"bad log level", with(tokenEnv(), "LOG_LEVEL", "verbose"),
			"LOG_LEVEL", `LOG_LEVEL: must be one of trace, debug, info, warn, error (got "verbose")`},
		{"bad log format", with(tokenEnv(), "LOG_FORMAT", "text"),
			"LOG_FORMAT", `LOG_FORMAT: must be one of json, console (got "text")`},
		{"HTTP address without port", with(tokenEnv(), "HTTP_ADDR", "8080"),
			"HTTP_ADDR", `HTTP_ADDR: must be host:port such as ":8080" or "127.0.0.1:8080" (got "8080")`},
		{"HTTP port out of range", with(tokenEnv(), "HTTP_ADDR", ":70000"),
			"HTTP_ADDR", "must be host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, tt.env)
			if got := vars(ps); !slices.Equal(got, []string{tt.wantVar}) {
				t.Fatalf("problem variables = %q, want only %s; problems: %v", got, tt.wantVar, ps)
			}
			if line := ps[0].Var + ": " + ps[0].Message; !strings.Contains(line, tt.wantMsg) {
				t.Errorf("problem = %q, want it to contain %q", line, tt.wantMsg)
			}
		})
	}
}

func TestLoadReportsAllProblemsAtOnce(t *testing.T) {
	ps := problems(t, map[string]string{
		"SLACK_BOT_TOKEN":       "xapp-1-A111-2222-wrong",
		"SLACK_APP_TOKEN_FILE":  filepath.Join(t.TempDir(), "missing"),
		"CLOUDFLARE_ACCOUNT_ID": "abc",
		"CLOUDFLARE_API_EMAIL":  cfEmail,
		"REQUESTER_IDS":         "alice,bob",
		"REQUEST_TTL":           "soon",
		"GROUP_CACHE_TTL":       "later",
		"LOG_LEVEL":             "loud",
		"HTTP_ADDR":             "nowhere",
	})
	want := []string{
		"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN_FILE", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_KEY",
		"REQUESTER_IDS", "REQUESTER_IDS", "REQUEST_TTL", "GROUP_CACHE_TTL", "LOG_LEVEL", "HTTP_ADDR",
	}
	if got := vars(ps); !slices.Equal(got, want) {
		t.Errorf("problem variables = %q\nwant %q", got, want)
	}
}

func TestLoadSecretsFromFiles(t *testing.T) {
	cfg := mustLoad(t, map[string]string{
		"SLACK_BOT_TOKEN_FILE":      writeFile(t, botToken+"\n"),
		"SLACK_APP_TOKEN_FILE":      writeFile(t, appToken+"\r\n"),
		"CLOUDFLARE_ACCOUNT_ID":     accountID,
		"CLOUDFLARE_API_TOKEN_FILE": writeFile(t, cfToken+" \n\n"),
	})
	if cfg.SlackBotToken != botToken || cfg.SlackAppToken != appToken || cfg.CloudflareAPIToken != cfToken {
		t.Errorf("tokens read from files were not trimmed to the secret: %q %q %q",
			cfg.SlackBotToken, cfg.SlackAppToken, cfg.CloudflareAPIToken)
	}

	cfg = mustLoad(t, with(tokenEnv(),
		"CLOUDFLARE_API_TOKEN", "",
		"CLOUDFLARE_API_EMAIL", cfEmail,
		"CLOUDFLARE_API_KEY_FILE", writeFile(t, cfKey+"\n"),
	))
	if cfg.CloudflareAPIKey != cfKey {
		t.Errorf("CloudflareAPIKey = %q, want %q", cfg.CloudflareAPIKey, cfKey)
	}
}

func TestLoadSecretFileProblems(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-file")
	// Nothing ever writes to the pipe: reading it would block the test.
	fifo := filepath.Join(t.TempDir(), "token-pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		wantMsg []string
	}{
		{"variable and file both set", with(tokenEnv(), "SLACK_BOT_TOKEN_FILE", writeFile(t, botToken)),
			"SLACK_BOT_TOKEN", []string{"set either SLACK_BOT_TOKEN or SLACK_BOT_TOKEN_FILE, not both"}},
		{"unreadable file", with(tokenEnv(), "SLACK_APP_TOKEN", "", "SLACK_APP_TOKEN_FILE", missing),
			"SLACK_APP_TOKEN_FILE", []string{"cannot read file", missing, "no such file or directory"}},
		{"directory", with(tokenEnv(), "CLOUDFLARE_API_TOKEN", "", "CLOUDFLARE_API_TOKEN_FILE", t.TempDir()),
			"CLOUDFLARE_API_TOKEN_FILE", []string{"cannot read file", "is a directory"}},
		{"empty file", with(tokenEnv(), "SLACK_BOT_TOKEN", "", "SLACK_BOT_TOKEN_FILE", writeFile(t, "\n")),
			"SLACK_BOT_TOKEN_FILE", []string{"is empty"}},
		{"named pipe", with(tokenEnv(), "SLACK_BOT_TOKEN", "", "SLACK_BOT_TOKEN_FILE", fifo),
			"SLACK_BOT_TOKEN_FILE", []string{"cannot read file", "is not a regular file"}},
		{"two lines", with(tokenEnv(), "SLACK_BOT_TOKEN", "", "SLACK_BOT_TOKEN_FILE", writeFile(t, botToken+"\n"+botToken+"\n")),
			"SLACK_BOT_TOKEN_FILE", []string{"contains whitespace or control characters"}},
		{"wrong prefix in file", with(tokenEnv(), "SLACK_BOT_TOKEN", "", "SLACK_BOT_TOKEN_FILE", writeFile(t, appToken)),
			"SLACK_BOT_TOKEN_FILE", []string{`must start with xoxb- (got a value starting with "xapp-")`}},
		{"huge file", with(tokenEnv(), "SLACK_BOT_TOKEN", "", "SLACK_BOT_TOKEN_FILE", writeFile(t, "xoxb-"+strings.Repeat("a", 70<<10))),
			"SLACK_BOT_TOKEN_FILE", []string{"larger than 64 KiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, tt.env)
			if got := vars(ps); !slices.Equal(got, []string{tt.wantVar}) {
				t.Fatalf("problem variables = %q, want only %s; problems: %v", got, tt.wantVar, ps)
			}
			for _, want := range tt.wantMsg {
				if !strings.Contains(ps[0].Message, want) {
					t.Errorf("message %q does not contain %q", ps[0].Message, want)
				}
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	contains := func(warnings []string, s string) bool {
		return slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, s) })
	}

	open := mustLoad(t, tokenEnv())
	if w := open.Warnings(); !contains(w, "REQUESTER_IDS") || !contains(w, "nobody can request") {
		t.Errorf("Warnings() = %q, want one saying that with empty REQUESTER_IDS nobody can request", w)
	}

	configured := mustLoad(t, with(tokenEnv(), "REQUESTER_IDS", "S0SOC", "APPROVER_IDS", "S0LEADS"))
	if w := configured.Warnings(); len(w) != 0 {
		t.Errorf("Warnings() = %q, want none for a token config with requesters and approvers", w)
	}

	risky := mustLoad(t, with(tokenEnv(),
		"REQUESTER_IDS", "S0SOC",
		"CLOUDFLARE_API_TOKEN", "",
		"CLOUDFLARE_API_EMAIL", cfEmail,
		"CLOUDFLARE_API_KEY", cfKey,
		"SLACK_API_URL", "http://127.0.0.1:1/api/",
	))
	w := risky.Warnings()
	for _, want := range []string{"APPROVER_IDS", "CLOUDFLARE_API_KEY", "SLACK_API_URL uses http://"} {
		if !contains(w, want) {
			t.Errorf("Warnings() = %q, want one mentioning %q", w, want)
		}
	}
}

func TestRedisURLPasswordNeverShown(t *testing.T) {
	const password = "hunter2-redis-SECRET"
	cfg := mustLoad(t, with(tokenEnv(), "REDIS_URL", "rediss://bot:"+password+"@redis.internal:6380/0"))
	if cfg.RedisURL == "" {
		t.Fatal("REDIS_URL not loaded")
	}
	if s := cfg.String(); strings.Contains(s, password) || !strings.Contains(s, "redis.internal") {
		t.Errorf("String() = %q: want the host shown and the password hidden", s)
	}
	_, err := config.Load(environ(with(tokenEnv(), "REDIS_URL", "tcp://bot:"+password+"@redis.internal:6380/0")))
	if err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("bad REDIS_URL error = %v: want an error without the password", err)
	}
}
