package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"risk-reset-bot/bot"
	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// checkEnv returns the harness environment in os.Environ form, without the
// variables set to "".
func checkEnv(h *harness) []string {
	var environ []string
	for k, v := range h.env {
		if v != "" {
			environ = append(environ, k+"="+v)
		}
	}
	return environ
}

// runCheckOn runs `risk-reset-bot check` through run, as main does, and
// fails the test when the output shows a secret.
func runCheckOn(t *testing.T, h *harness, secrets ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(h.ctx, []string{"check"}, checkEnv(h), &out)
	secrets = append(secrets, h.slack.BotToken(), h.slack.AppToken(), cfToken)
	for _, s := range secrets {
		if strings.Contains(out.String(), s) || (err != nil && strings.Contains(err.Error(), s)) {
			t.Errorf("a secret appears in the check's output or error:\n%s\n%v", out.String(), err)
		}
	}
	if h.cf.Calls(cfapitest.OpResetRisk) != 0 {
		t.Errorf("check reset a risk score")
	}
	return out.String(), err
}

// checkLine returns the table line of the check whose name starts with
// name, failing the test when there is not exactly one.
func checkLine(t *testing.T, out, name string) string {
	t.Helper()
	var found []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, name) {
			found = append(found, line)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one line for %q, got %d in:\n%s", name, len(found), out)
	}
	return found[0]
}

// wantRow checks that the row for name has result and every text in want.
func wantRow(t *testing.T, out, name, result string, want ...string) {
	t.Helper()
	line := checkLine(t, out, name)
	if !strings.Contains(line, "| "+result+" ") {
		t.Errorf("%s: want %s, got:\n%s", name, result, line)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("%s: want %q in:\n%s", name, w, line)
		}
	}
}

// withReportedScopes puts a proxy in front of the fake Slack that adds the
// X-OAuth-Scopes header Slack sends with auth.test.
func withReportedScopes(t *testing.T, h *harness, scopes string) {
	t.Helper()
	target, err := url.Parse(h.slack.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(&url.URL{Scheme: target.Scheme, Host: target.Host}) },
		ModifyResponse: func(resp *http.Response) error {
			if strings.HasSuffix(resp.Request.URL.Path, "/auth.test") {
				resp.Header.Set("X-OAuth-Scopes", scopes)
			}
			return nil
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	h.env["SLACK_API_URL"] = srv.URL + "/api/"
}

func TestCheckPassesWhenEverythingWorks(t *testing.T) {
	h := newHarness(t, withEnv("ALLOWED_CHANNEL_IDS", channelOps))
	withReportedScopes(t, h, strings.Join(bot.BotScopes, ","))

	out, err := runCheckOn(t, h)
	if err != nil {
		t.Fatalf("check failed: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "CHECK ") || !strings.Contains(checkLine(t, out, "CHECK"), "| RESULT") {
		t.Errorf("no table header:\n%s", out)
	}
	if strings.Contains(out, "| FAIL") {
		t.Errorf("a row failed:\n%s", out)
	}
	wantRow(t, out, "Slack bot token", "OK", slackfake.TeamName, slackfake.TeamID, "@"+slackfake.BotUserName)
	wantRow(t, out, "Slack bot scopes", "OK")
	wantRow(t, out, "Slack app token", "OK", "Socket Mode")
	wantRow(t, out, "channel "+channelOps+" (ALLOWED_CHANNEL_IDS)", "OK", "#soc-ops", "member")
	wantRow(t, out, "channel "+channelAudit+" (AUDIT_CHANNEL_ID)", "OK", "#soc-audit")
	wantRow(t, out, "user "+analyst+" (REQUESTER_IDS)", "OK", "@analyst")
	wantRow(t, out, "user "+lead+" (REQUESTER_IDS)", "OK", "@lead")
	wantRow(t, out, "user group "+leadsGroup+" (APPROVER_IDS)", "OK", "2 members")
	wantRow(t, out, "Cloudflare API token", "OK", "active")
	wantRow(t, out, "Cloudflare: Access: Audit Logs Read", "OK")
	wantRow(t, out, "Cloudflare: Zero Trust PII Read", "OK", "probe read allowed")
	wantRow(t, out, "Cloudflare: Zero Trust Write", "SKIP", "without resetting")

	// The app token is tried without opening the websocket.
	if n := len(h.slack.Calls("apps.connections.open")); n != 1 {
		t.Errorf("apps.connections.open called %d times, want 1", n)
	}
	if n := h.slack.Hellos(); n != 0 {
		t.Errorf("check opened %d Socket Mode connections, want none", n)
	}
}

func TestCheckFailsOnAWrongBotToken(t *testing.T) {
	wrong := "xoxb-0000000000-0000000000000-SECRETwrongbottoken"
	h := newHarness(t, withEnv("SLACK_BOT_TOKEN", wrong))

	out, err := runCheckOn(t, h, wrong)
	if err == nil || !strings.Contains(err.Error(), "1 of") {
		t.Fatalf("check error = %v, want one failed check\n%s", err, out)
	}
	wantRow(t, out, "Slack bot token", "FAIL", "invalid_auth", "Fix:", "Bot User OAuth Token")
	// What depends on the bot token is skipped rather than failed again.
	wantRow(t, out, "channel "+channelAudit, "SKIP", "bot token does not work")
	wantRow(t, out, "user group "+leadsGroup, "SKIP")
	wantRow(t, out, "Slack app token", "OK")
	wantRow(t, out, "Cloudflare API token", "OK")
}

func TestCheckFailsOnChannelsTheBotCannotUse(t *testing.T) {
	h := newHarness(t, withEnv("ALLOWED_CHANNEL_IDS", channelOps+","+channelOther+",C0404"))

	out, err := runCheckOn(t, h)
	if err == nil || !strings.Contains(err.Error(), "2 of") {
		t.Fatalf("check error = %v, want two failed checks\n%s", err, out)
	}
	wantRow(t, out, "channel "+channelOps, "OK")
	wantRow(t, out, "channel "+channelOther, "FAIL", "not a member of #random", "Fix: invite @"+slackfake.BotUserName+" with /invite @"+slackfake.BotUserName+" in #random")
	wantRow(t, out, "channel C0404", "FAIL", "channel_not_found", "ALLOWED_CHANNEL_IDS")
}

func TestCheckFailsOnUnknownUsersAndEmptyGroups(t *testing.T) {
	h := newHarness(t,
		withEnv("REQUESTER_IDS", analyst+",U0404,S0EMPTY"),
		withEnv("APPROVER_IDS", "S0404,"+analyst))
	h.slack.SetGroupMembers("S0EMPTY")

	out, err := runCheckOn(t, h)
	if err == nil || !strings.Contains(err.Error(), "3 of") {
		t.Fatalf("check error = %v, want three failed checks\n%s", err, out)
	}
	wantRow(t, out, "user "+analyst+" (REQUESTER_IDS, APPROVER_IDS)", "OK")
	wantRow(t, out, "user U0404", "FAIL", "user_not_found", "Copy member ID")
	wantRow(t, out, "user group S0EMPTY", "FAIL", "no members", "add people to the group")
	wantRow(t, out, "user group S0404", "FAIL", "no_such_subteam", "APPROVER_IDS")
}

func TestCheckFailsWhenSlackHidesEmails(t *testing.T) {
	h := newHarness(t)
	h.slack = slackfake.New(t, slackfake.WithoutEmailScope())
	h.seed()
	h.env["SLACK_API_URL"] = h.slack.APIURL()

	out, err := runCheckOn(t, h)
	if err == nil {
		t.Fatalf("check passed although Slack shows no emails:\n%s", out)
	}
	wantRow(t, out, "user "+analyst, "FAIL", "no email", "users:read.email")
}

func TestCheckNamesMissingSlackScopes(t *testing.T) {
	h := newHarness(t)
	withReportedScopes(t, h, "chat:write,commands,users:read")

	out, err := runCheckOn(t, h)
	if err == nil {
		t.Fatalf("check passed with missing scopes:\n%s", out)
	}
	wantRow(t, out, "Slack bot scopes", "FAIL", "channels:read", "groups:read", "users:read.email", "usergroups:read", "reinstall")
}

func TestCheckNamesMissingCloudflarePermissions(t *testing.T) {
	h := newHarness(t)
	h.cf.Deny(cfapitest.OpListUsers)
	h.cf.Deny(cfapitest.OpGetUserRisk)

	out, err := runCheckOn(t, h)
	if err == nil || !strings.Contains(err.Error(), "2 of") {
		t.Fatalf("check error = %v, want two failed checks\n%s", err, out)
	}
	wantRow(t, out, "Cloudflare: Access: Audit Logs Read", "FAIL",
		"lack Access: Audit Logs Read", `Fix: add "Access: Audit Logs Read"`, "only Cloudflare user IDs")
	wantRow(t, out, "Cloudflare: Zero Trust PII Read", "FAIL",
		"lack Zero Trust PII Read", `Fix: add "Zero Trust PII Read"`)
	wantRow(t, out, "Cloudflare: Zero Trust Write", "SKIP")
}

// TestCheckPIIProbeTellsCredentialsFromUnknownUsers: the PII probe reads a
// made-up user, so "not found" means the read was allowed; but an answer
// about the credentials themselves (here legacy key headers Cloudflare
// rejects, which no token check catches) must not pass as allowed.
func TestCheckPIIProbeTellsCredentialsFromUnknownUsers(t *testing.T) {
	tests := []struct {
		name   string
		fault  cfapitest.Fault
		result string
	}{
		{"unknown user", cfapitest.Fault{Status: http.StatusNotFound, Code: cfapitest.CodeUserNotFound, Message: "User not found"}, "OK"},
		{"bad request about the user", cfapitest.Fault{Status: http.StatusBadRequest, Code: 7001, Message: "invalid user id"}, "OK"},
		{"rejected key headers", cfapitest.Fault{Status: http.StatusBadRequest, Code: 6003, Message: "Invalid request headers"}, "FAIL"},
		{"unauthorized", cfapitest.Fault{Status: http.StatusUnauthorized, Code: 10001, Message: "Unable to authenticate request"}, "FAIL"},
		{"no route (wrong account or path)", cfapitest.Fault{Status: http.StatusNotFound, Code: cfapitest.CodeNoRoute, Message: "No route for the URI"}, "FAIL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.cf.Inject(cfapitest.OpGetUserRisk, tt.fault)

			out, _ := runCheckOn(t, h)
			wantRow(t, out, "Cloudflare: Zero Trust PII Read", tt.result)
		})
	}
}

func TestCheckFailsOnARejectedCloudflareToken(t *testing.T) {
	wrong := "cf-token-SECRET-wrong-00000000000000000000"
	h := newHarness(t, withEnv("CLOUDFLARE_API_TOKEN", wrong))

	out, err := runCheckOn(t, h, wrong)
	if err == nil || !strings.Contains(err.Error(), "1 of") {
		t.Fatalf("check error = %v, want one failed check\n%s", err, out)
	}
	wantRow(t, out, "Cloudflare API token", "FAIL", "Fix:", "CLOUDFLARE_API_TOKEN")
	// A bad token would be refused everywhere; the probes would wrongly
	// blame missing permissions.
	wantRow(t, out, "Cloudflare: Access: Audit Logs Read", "SKIP")
	wantRow(t, out, "Cloudflare: Zero Trust PII Read", "SKIP")
}

func TestCheckWithLegacyKeySkipsTheTokenCheck(t *testing.T) {
	const email, key = "soc@example.com", "cf-key-SECRET-0000000000000000000000000"
	h := newHarness(t,
		withEnv("CLOUDFLARE_API_TOKEN", ""),
		withEnv("CLOUDFLARE_API_EMAIL", email),
		withEnv("CLOUDFLARE_API_KEY", key))
	h.cf.SetAPIKey(email, key)

	out, err := runCheckOn(t, h, key)
	if err != nil {
		t.Fatalf("check failed: %v\n%s", err, out)
	}
	wantRow(t, out, "Cloudflare credentials", "SKIP", "key auth: token check not applicable")
	wantRow(t, out, "Cloudflare: Access: Audit Logs Read", "OK")
	if h.cf.Calls(cfapitest.OpVerifyAccountToken)+h.cf.Calls(cfapitest.OpVerifyUserToken) != 0 {
		t.Errorf("a legacy key was sent to a token verify endpoint")
	}
}

func TestCheckReportsConfigurationProblemsWithoutCallingAnything(t *testing.T) {
	h := newHarness(t, withEnv("SLACK_APP_TOKEN", ""), withEnv("AUDIT_CHANNEL_ID", "#audit"))

	out, err := runCheckOn(t, h)
	if err == nil {
		t.Fatalf("check passed with a broken configuration:\n%s", out)
	}
	for _, want := range []string{"invalid configuration", "SLACK_APP_TOKEN: required", "AUDIT_CHANNEL_ID:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := len(h.slack.Calls("")); n != 0 {
		t.Errorf("check called Slack %d times with a broken configuration", n)
	}
	if n := h.cfSrv.RequestCount(); n != 0 {
		t.Errorf("check called Cloudflare %d times with a broken configuration", n)
	}
}

func TestCheckStopsWhenInterrupted(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	var out bytes.Buffer
	err := runCheck(ctx, checkEnv(h), &out)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("check with a cancelled context: err = %v\n%s", err, out.String())
	}
}
