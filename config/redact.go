package config

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

const (
	secretSet   = "[redacted]"
	secretUnset = "unset"
)

// viewField is one entry of the redacted view of a Config.
type viewField struct {
	key    string
	value  string
	list   []string
	isList bool
}

// view is the single place that decides what of a Config may be shown;
// String, Format, MarshalJSON and MarshalZerologObject all render it.
func (c Config) view() []viewField {
	ids := func(key string, list []string) viewField {
		return viewField{key: key, list: list, isList: true}
	}
	return []viewField{
		{key: "slack_bot_token", value: redact(c.SlackBotToken)},
		{key: "slack_app_token", value: redact(c.SlackAppToken)},
		{key: "slack_api_url", value: redactURL(c.SlackAPIURL)},
		{key: "cloudflare_account_id", value: c.CloudflareAccountID},
		{key: "cloudflare_auth_scheme", value: c.CloudflareAuthScheme()},
		{key: "cloudflare_api_token", value: redact(c.CloudflareAPIToken)},
		{key: "cloudflare_api_email", value: c.CloudflareAPIEmail},
		{key: "cloudflare_api_key", value: redact(c.CloudflareAPIKey)},
		{key: "cloudflare_api_url", value: redactURL(c.CloudflareAPIURL)},
		ids("requester_ids", c.RequesterIDs),
		ids("approver_ids", c.ApproverIDs),
		ids("allowed_channel_ids", c.AllowedChannelIDs),
		{key: "audit_channel_id", value: c.AuditChannelID},
		{key: "request_ttl", value: c.RequestTTL.String()},
		{key: "required_approvals", value: strconv.Itoa(c.RequiredApprovals)},
		{key: "require_reason", value: strconv.FormatBool(c.RequireReason)},
		{key: "group_cache_ttl", value: c.GroupCacheTTL.String()},
		{key: "log_level", value: c.LogLevel},
		{key: "log_format", value: c.LogFormat},
		{key: "http_addr", value: c.HTTPAddr},
		{key: "shutdown_timeout", value: c.ShutdownTimeout.String()},
		{key: "redis_url", value: redactURL(c.RedisURL)},
	}
}

func redact(secret string) string {
	if secret == "" {
		return secretUnset
	}
	return secretSet
}

// redactURL hides user info and query, where proxies and gateways put
// credentials.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "[invalid URL]"
	}
	return displayURL(u)
}

// String renders the configuration as space-separated key=value pairs with
// secrets redacted, safe for logs and error messages.
func (c Config) String() string {
	var b strings.Builder
	for i, f := range c.view() {
		if i > 0 {
			b.WriteByte(' ')
		}
		value := f.value
		if f.isList {
			value = strings.Join(f.list, ",")
		}
		if value == "" || strings.ContainsAny(value, " \t\n\"") {
			value = fmt.Sprintf("%q", value)
		}
		b.WriteString(f.key + "=" + value)
	}
	return b.String()
}

// Format makes every fmt verb, including %#v and %d, print the redacted
// String instead of the struct's fields.
func (c Config) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, c.String())
}

// MarshalJSON renders the redacted view, so that encoding a Config (for
// example with zerolog's Interface) cannot leak a secret.
func (c Config) MarshalJSON() ([]byte, error) {
	m := make(map[string]any)
	for _, f := range c.view() {
		if f.isList {
			m[f.key] = nonNil(f.list)
		} else {
			m[f.key] = f.value
		}
	}
	return json.Marshal(m)
}

// MarshalZerologObject adds the redacted view to a log event, for use with
// zerolog's Object.
func (c Config) MarshalZerologObject(e *zerolog.Event) {
	for _, f := range c.view() {
		if f.isList {
			e.Strs(f.key, nonNil(f.list))
		} else {
			e.Str(f.key, f.value)
		}
	}
}

func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}
