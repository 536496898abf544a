package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"risk-reset-bot/config"
)

// marker is in every secret below. Messages may show at most five bytes of a
// wrong token, so no output may ever contain the six-byte marker.
const marker = "SEKRIT"

var (
	secretBot      = "xoxb-" + marker + "-bot-1234567890"
	secretApp      = "xapp-" + marker + "-app-1234567890"
	secretCFToken  = marker + "-cftoken-12345678901234567890"
	secretCFKey    = marker + "-cfkey-1234567890123456789012"
	secretWrongBot = "xapp-" + marker + "-wrongbot-123456"
	secretWrongApp = "xoxb-" + marker + "-wrongapp-123456"
)

func secretTokenEnv() map[string]string {
	return map[string]string{
		"SLACK_BOT_TOKEN":       secretBot,
		"SLACK_APP_TOKEN":       secretApp,
		"CLOUDFLARE_ACCOUNT_ID": accountID,
		"CLOUDFLARE_API_TOKEN":  secretCFToken,
	}
}

func TestSecretsNeverShown(t *testing.T) {
	keyScheme := with(secretTokenEnv(),
		"CLOUDFLARE_API_TOKEN", "",
		"CLOUDFLARE_API_EMAIL", cfEmail,
		"CLOUDFLARE_API_KEY", secretCFKey,
	)
	fromFiles := map[string]string{
		"SLACK_BOT_TOKEN_FILE":    writeFile(t, secretBot+"\n"),
		"SLACK_APP_TOKEN_FILE":    writeFile(t, secretApp+"\n"),
		"CLOUDFLARE_ACCOUNT_ID":   accountID,
		"CLOUDFLARE_API_EMAIL":    cfEmail,
		"CLOUDFLARE_API_KEY_FILE": writeFile(t, secretCFKey+"\n"),
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{"valid token scheme", secretTokenEnv(), false},
		{"valid key scheme", keyScheme, false},
		{"valid from files", fromFiles, false},
		{"proxy credentials in the Slack URL", with(secretTokenEnv(),
			"SLACK_API_URL", "https://user:"+marker+"@proxy.test/api/"), false},
		{"credentials in the Cloudflare URL", with(secretTokenEnv(),
			"CLOUDFLARE_API_URL", "https://"+marker+"@proxy.test/cf"), true},
		{"wrong prefixes", with(secretTokenEnv(),
			"SLACK_BOT_TOKEN", secretWrongBot,
			"SLACK_APP_TOKEN", secretWrongApp), true},
		{"both Cloudflare schemes", with(secretTokenEnv(),
			"CLOUDFLARE_API_EMAIL", cfEmail,
			"CLOUDFLARE_API_KEY", secretCFKey), true},
		{"key without email", with(secretTokenEnv(),
			"CLOUDFLARE_API_TOKEN", "",
			"CLOUDFLARE_API_KEY", secretCFKey), true},
		{"variables and files both set", with(secretTokenEnv(),
			"SLACK_BOT_TOKEN_FILE", writeFile(t, secretBot),
			"SLACK_APP_TOKEN_FILE", writeFile(t, secretApp),
			"CLOUDFLARE_API_TOKEN_FILE", writeFile(t, secretCFToken)), true},
		{"files with wrong prefixes", with(fromFiles,
			"SLACK_BOT_TOKEN_FILE", writeFile(t, secretWrongBot),
			"SLACK_APP_TOKEN_FILE", writeFile(t, secretWrongApp)), true},
		{"files with two lines", with(fromFiles,
			"SLACK_BOT_TOKEN_FILE", writeFile(t, secretBot+"\n"+secretBot),
			"CLOUDFLARE_API_KEY_FILE", writeFile(t, secretCFKey+"\n"+secretCFKey)), true},
		{"whitespace inside secrets", with(secretTokenEnv(),
			"SLACK_APP_TOKEN", secretApp+" x",
			"CLOUDFLARE_API_TOKEN", secretCFToken+"\tx"), true},
		{"secrets pasted into other variables", with(secretTokenEnv(),
			"CLOUDFLARE_ACCOUNT_ID", secretCFKey,
			"REQUESTER_IDS", secretBot,
			"APPROVER_IDS", "U0LEAD,"+secretApp,
			"ALLOWED_CHANNEL_IDS", secretCFToken,
			"AUDIT_CHANNEL_ID", secretCFKey,
			"REQUEST_TTL", secretBot,
			"GROUP_CACHE_TTL", secretApp,
			"LOG_LEVEL", secretCFToken,
			"LOG_FORMAT", secretCFKey,
			"HTTP_ADDR", secretBot), true},
		{"secret in invalid URLs", with(secretTokenEnv(),
			"SLACK_API_URL", "https://u:"+marker+"@proxy.test/api/?token="+marker,
			"CLOUDFLARE_API_URL", "ftp://u:"+marker+"@proxy.test/#"+marker), true},
		{"unparseable URL with secret", with(secretTokenEnv(),
			"SLACK_API_URL", "https://u:"+marker+"@proxy.test:port/"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(environ(tt.env))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Load error = %v, want error: %v", err, tt.wantErr)
			}
			for what, out := range renderings(t, cfg, err) {
				if strings.Contains(out, marker) {
					t.Errorf("%s shows a secret:\n%s", what, out)
				}
			}
		})
	}
}

// renderings returns every way a caller might show the result of Load.
func renderings(t *testing.T, cfg *config.Config, err error) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err != nil {
		out["Error()"] = err.Error()
		out["%+v of error"] = fmt.Sprintf("%+v", err)
		var verr *config.ValidationError
		if errors.As(err, &verr) {
			out["%#v of problems"] = fmt.Sprintf("%#v", verr.Problems)
		}
		return out
	}
	out["String()"] = cfg.String()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"} {
		out[verb+" of *Config"] = fmt.Sprintf(verb, cfg)
		out[verb+" of Config"] = fmt.Sprintf(verb, *cfg)
	}
	out["Warnings()"] = strings.Join(cfg.Warnings(), "\n")

	b, jerr := json.Marshal(cfg)
	if jerr != nil {
		t.Fatalf("json.Marshal: %v", jerr)
	}
	out["json"] = string(b)

	var buf bytes.Buffer
	logger := zerolog.New(&buf)
	logger.Info().Object("config", cfg).Msg("object")
	logger.Info().Interface("config", cfg).Msg("interface")
	logger.Info().Stringer("config", cfg).Msg("stringer")
	out["zerolog"] = buf.String()
	return out
}

func TestRedactedViewShowsSettings(t *testing.T) {
	cfg := mustLoad(t, with(secretTokenEnv(),
		"SLACK_API_URL", "https://user:"+marker+"@proxy.test/api",
		"REQUESTER_IDS", "U0ALICE,S0SOC",
		"AUDIT_CHANNEL_ID", "C0AUDIT",
	))
	s := cfg.String()
	for _, want := range []string{
		"slack_bot_token=[redacted]",
		"cloudflare_api_token=[redacted]",
		"cloudflare_api_key=unset",
		"cloudflare_auth_scheme=token",
		"cloudflare_account_id=" + strings.ToLower(accountID),
		"slack_api_url=https://redacted@proxy.test/api/",
		"cloudflare_api_url=https://api.cloudflare.com/client/v4",
		"requester_ids=U0ALICE,S0SOC",
		"approver_ids=\"\"",
		"audit_channel_id=C0AUDIT",
		"request_ttl=30m0s",
		"log_level=info",
		"http_addr=:8080",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %s\nwant it to contain %s", s, want)
		}
	}

	var buf bytes.Buffer
	logger := zerolog.New(&buf)
	logger.Info().Object("config", cfg).Msg("")
	var line struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	if got := line.Config["slack_app_token"]; got != "[redacted]" {
		t.Errorf("logged slack_app_token = %v, want [redacted]", got)
	}
	if got := fmt.Sprint(line.Config["requester_ids"]); got != "[U0ALICE S0SOC]" {
		t.Errorf("logged requester_ids = %v, want [U0ALICE S0SOC]", got)
	}
	if got := line.Config["cloudflare_account_id"]; got != strings.ToLower(accountID) {
		t.Errorf("logged cloudflare_account_id = %v, want %s", got, strings.ToLower(accountID))
	}
}
