package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/slack-go/slack"

	"risk-reset-bot/bot"
	"risk-reset-bot/cloudflare"
	"risk-reset-bot/config"
	"risk-reset-bot/internal/buildinfo"
)

// Results of one preflight check. Only checkFail makes `check` exit non-zero.
const (
	checkOK   = "OK"
	checkFail = "FAIL"
	checkWarn = "WARN"
	checkSkip = "SKIP"
)

// checkTimeout bounds each check, Slack's rate-limit waits and Cloudflare's
// retries included, so an unreachable API cannot hang the preflight.
const checkTimeout = 20 * time.Second

// probeEmail is syntactically valid but on a reserved domain (RFC 2606), so
// looking it up exercises the permission without finding anybody.
const probeEmail = "risk-reset-bot-check@invalid.example"

// checkRow is one line of the preflight table.
type checkRow struct {
	name   string
	result string
	detail string
	fix    string // what the operator should do, in plain words; set for FAIL
}

// checker runs the preflight checks against Slack and Cloudflare with the
// same configuration the bot would use, and collects one row per check.
type checker struct {
	cfg   *config.Config
	slack *slack.Client
	cf    *cloudflare.Client
	rows  []checkRow
	// botName is the bot user's name from auth.test, for /invite hints.
	botName string
}

// runCheck is `risk-reset-bot check`: it validates the configuration, then
// verifies tokens, scopes, channels, user groups and users against Slack and
// the token's permissions against Cloudflare, without starting the bot. It
// prints a table and returns nil only when no check failed.
func runCheck(ctx context.Context, environ []string, out io.Writer) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	cf, err := checkCloudflareClient(cfg)
	if err != nil {
		return err
	}
	c := &checker{
		cfg: cfg,
		slack: bot.NewSlackClient(bot.Config{
			BotToken: cfg.SlackBotToken, AppToken: cfg.SlackAppToken, APIURL: cfg.SlackAPIURL,
			HTTPClient: &http.Client{Timeout: checkTimeout},
		}),
		cf:      cf,
		botName: "risk-reset-bot",
	}
	c.run(ctx)
	writeCheckTable(out, c.rows, secretsOf(cfg))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("check interrupted before every check ran: %w", err)
	}
	return checkSummary(out, c.rows)
}

func checkCloudflareClient(cfg *config.Config) (*cloudflare.Client, error) {
	auth := cloudflare.TokenAuth(cfg.CloudflareAPIToken)
	if cfg.CloudflareAuthScheme() == config.AuthSchemeKey {
		auth = cloudflare.KeyAuth(cfg.CloudflareAPIEmail, cfg.CloudflareAPIKey)
	}
	c, err := cloudflare.NewClient(cfg.CloudflareAccountID, auth,
		cloudflare.WithBaseURL(cfg.CloudflareAPIURL),
		cloudflare.WithUserAgent("risk-reset-bot/"+buildinfo.Version),
		cloudflare.WithHTTPClient(&http.Client{Timeout: checkTimeout}),
		cloudflare.WithRetryBudget(checkTimeout/2),
	)
	if err != nil {
		return nil, fmt.Errorf("cloudflare client: %w", err)
	}
	return c, nil
}

func (c *checker) add(r checkRow) { c.rows = append(c.rows, r) }

func (c *checker) ok(name, format string, args ...any) {
	c.add(checkRow{name: name, result: checkOK, detail: fmt.Sprintf(format, args...)})
}

func (c *checker) fail(name, detail, fix string) {
	c.add(checkRow{name: name, result: checkFail, detail: detail, fix: fix})
}

func (c *checker) skip(name, detail string) {
	c.add(checkRow{name: name, result: checkSkip, detail: detail})
}

// step runs one check with its own deadline.
func (c *checker) step(ctx context.Context, check func(context.Context)) {
	if ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	check(ctx)
}

func (c *checker) run(ctx context.Context) {
	c.configuration()
	slackOK := false
	c.step(ctx, func(ctx context.Context) { slackOK = c.slackBotToken(ctx) })
	c.step(ctx, c.slackAppToken)
	c.slackTargets(ctx, slackOK)
	cfOK := true
	c.step(ctx, func(ctx context.Context) { cfOK = c.cloudflareToken(ctx) })
	if cfOK {
		c.step(ctx, c.auditLogsRead)
		c.step(ctx, c.piiRead)
	} else {
		const why = "not checked: the Cloudflare credentials do not work"
		c.skip("Cloudflare: "+cloudflare.PermAuditLogsRead, why)
		c.skip("Cloudflare: "+cloudflare.PermZeroTrustPIIRead, why)
	}
	c.zeroTrustWrite()
}

func (c *checker) configuration() {
	c.ok("configuration", "valid; Cloudflare credentials: %s", authDescription(c.cfg))
	for _, w := range c.cfg.Warnings() {
		c.add(checkRow{name: "configuration", result: checkWarn, detail: w})
	}
}

func authDescription(cfg *config.Config) string {
	if cfg.CloudflareAuthScheme() == config.AuthSchemeKey {
		return "legacy email and global API key"
	}
	return "API token"
}

// slackTargets checks the channels, user groups and users the
// configuration names. They need a working bot token.
func (c *checker) slackTargets(ctx context.Context, botTokenOK bool) {
	channels := c.configuredChannels()
	principals := c.configuredPrincipals()
	if !botTokenOK {
		for _, t := range append(channels, principals...) {
			c.skip(t.label(), "not checked: the Slack bot token does not work")
		}
		return
	}
	if len(channels) == 0 {
		c.skip("channels", "ALLOWED_CHANNEL_IDS and AUDIT_CHANNEL_ID are empty: /risk-reset works in every channel the bot is invited to")
	}
	for _, t := range channels {
		c.step(ctx, func(ctx context.Context) { c.channel(ctx, t) })
	}
	for _, t := range principals {
		if strings.HasPrefix(t.id, "S") {
			c.step(ctx, func(ctx context.Context) { c.userGroup(ctx, t) })
		} else {
			c.step(ctx, func(ctx context.Context) { c.user(ctx, t) })
		}
	}
}

// target is a Slack ID from the configuration and the variables naming it.
type target struct {
	id   string
	kind string // "channel", "user group" or "user"
	vars []string
}

func (t target) label() string {
	return fmt.Sprintf("%s %s (%s)", t.kind, t.id, strings.Join(t.vars, ", "))
}

func (t target) varList() string { return strings.Join(t.vars, " and ") }

// collectTargets lists each ID once, in configuration order, with every
// variable that names it.
func collectTargets(kind func(id string) string, lists ...idList) []target {
	var out []target
	for _, l := range lists {
		for _, id := range l.ids {
			i := slices.IndexFunc(out, func(t target) bool { return t.id == id })
			if i < 0 {
				out = append(out, target{id: id, kind: kind(id)})
				i = len(out) - 1
			}
			if !slices.Contains(out[i].vars, l.name) {
				out[i].vars = append(out[i].vars, l.name)
			}
		}
	}
	return out
}

// idList is the value of a configuration variable holding Slack IDs.
type idList struct {
	name string
	ids  []string
}

func (c *checker) configuredChannels() []target {
	var audit []string
	if c.cfg.AuditChannelID != "" {
		audit = []string{c.cfg.AuditChannelID}
	}
	return collectTargets(func(string) string { return "channel" },
		idList{"ALLOWED_CHANNEL_IDS", c.cfg.AllowedChannelIDs},
		idList{"AUDIT_CHANNEL_ID", audit})
}

func (c *checker) configuredPrincipals() []target {
	kind := func(id string) string {
		if strings.HasPrefix(id, "S") {
			return "user group"
		}
		return "user"
	}
	return collectTargets(kind,
		idList{"REQUESTER_IDS", c.cfg.RequesterIDs},
		idList{"APPROVER_IDS", c.cfg.ApproverIDs})
}

// slackCode returns Slack's error code ("invalid_auth") or "" when the
// call failed without a Slack answer.
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

// commonSlackFix explains errors any bot-token call can get; ok is false
// when the error needs a call-specific explanation.
func commonSlackFix(err error) (fix string, ok bool) {
	var se slack.SlackErrorResponse
	isSlack := errors.As(err, &se)
	var rl *slack.RateLimitedError
	switch {
	case errors.As(err, &rl) || se.Err == "ratelimited":
		return "Slack is rate limiting this app; run the check again in a minute", true
	case !isSlack:
		return "could not reach Slack: check SLACK_API_URL, DNS, proxy and firewall, then run the check again", true
	case se.Err == "missing_scope":
		needed := se.Needed
		if needed == "" {
			needed = "a scope listed in manifest.yml"
		}
		return fmt.Sprintf("the app lacks the %s scope: update the app from manifest.yml and reinstall it (Install App → Reinstall to Workspace)", needed), true
	case isBadTokenCode(se.Err):
		return "Slack does not accept SLACK_BOT_TOKEN: copy the Bot User OAuth Token (xoxb-…) again from the app's Install App page; reinstall the app if it was revoked", true
	}
	return "", false
}

func isBadTokenCode(code string) bool {
	switch code {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type":
		return true
	}
	return false
}

func slackDetail(method string, err error) string {
	if code := slackCode(err); code != "" {
		return method + ": " + code
	}
	return method + " failed: " + err.Error()
}

func (c *checker) slackBotToken(ctx context.Context) bool {
	const name = "Slack bot token"
	res, err := c.slack.AuthTestContext(ctx)
	if err != nil {
		fix, _ := commonSlackFix(err)
		c.fail(name, slackDetail("auth.test", err), fix)
		c.skip("Slack bot scopes", "not checked: the Slack bot token does not work")
		return false
	}
	if res.User != "" {
		c.botName = res.User
	}
	c.ok(name, "team %s (%s), bot @%s (%s)", res.Team, res.TeamID, res.User, res.UserID)
	c.botScopes(res.Header.Get("X-OAuth-Scopes"))
	return true
}

// botScopes compares the scopes Slack reports for the bot token with the
// ones the code needs (bot.BotScopes, which manifest.yml declares).
func (c *checker) botScopes(header string) {
	const name = "Slack bot scopes"
	if strings.TrimSpace(header) == "" {
		c.skip(name, "Slack did not list the token's scopes; the checks below show any missing one")
		return
	}
	granted := map[string]bool{}
	for s := range strings.SplitSeq(header, ",") {
		granted[strings.TrimSpace(s)] = true
	}
	var missing []string
	for _, s := range bot.BotScopes {
		if !granted[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		c.fail(name, "missing: "+strings.Join(missing, ", "),
			"update the app from manifest.yml and reinstall it (Install App → Reinstall to Workspace)")
		return
	}
	c.ok(name, "all %d scopes the bot uses are granted", len(bot.BotScopes))
}

// slackAppToken asks for a Socket Mode URL with the app-level token, as the
// bot does at start, but does not connect to it.
func (c *checker) slackAppToken(ctx context.Context) {
	const name = "Slack app token"
	_, _, err := c.slack.StartSocketModeContext(ctx)
	if err == nil {
		c.ok(name, "apps.connections.open returned a Socket Mode URL")
		return
	}
	fix := "make sure Socket Mode is on (manifest.yml turns it on) and SLACK_APP_TOKEN is the app's current app-level token"
	switch code := slackCode(err); {
	case code == "missing_scope":
		fix = "the app-level token lacks connections:write: generate a new one with that scope under Basic Information → App-Level Tokens"
	case isBadTokenCode(code):
		fix = "Slack does not accept SLACK_APP_TOKEN: generate an app-level token (xapp-…) with connections:write under Basic Information → App-Level Tokens"
	case code == "":
		fix, _ = commonSlackFix(err)
	}
	c.fail(name, slackDetail("apps.connections.open", err), fix)
}

func (c *checker) channel(ctx context.Context, t target) {
	ch, err := c.slack.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: t.id})
	invite := fmt.Sprintf("/invite @%s", c.botName)
	if err != nil {
		fix, ok := commonSlackFix(err)
		if !ok && slackCode(err) == "channel_not_found" {
			fix = fmt.Sprintf("check the ID in %s (bottom of the channel's About panel); a private channel stays hidden until you run %s in it", t.varList(), invite)
		} else if !ok {
			fix = fmt.Sprintf("check the channel ID in %s", t.varList())
		}
		c.fail(t.label(), slackDetail("conversations.info", err), fix)
		return
	}
	where := "#" + ch.Name
	switch {
	case ch.IsArchived:
		c.fail(t.label(), where+" is archived", fmt.Sprintf("unarchive it, or set %s to a live channel", t.varList()))
	case !ch.IsMember:
		c.fail(t.label(), fmt.Sprintf("the bot is not a member of %s", where),
			fmt.Sprintf("invite @%s with %s in %s", c.botName, invite, where))
	default:
		c.ok(t.label(), "%s, the bot is a member", where)
	}
}

func (c *checker) userGroup(ctx context.Context, t target) {
	members, err := c.slack.GetUserGroupMembersContext(ctx, t.id)
	if err != nil {
		fix, ok := commonSlackFix(err)
		if !ok {
			fix = fmt.Sprintf("check the S… ID in %s (it is in the group's URL, or from usergroups.list); user groups need a paid Slack plan", t.varList())
		}
		c.fail(t.label(), slackDetail("usergroups.users.list", err), fix)
		return
	}
	if len(members) == 0 {
		c.fail(t.label(), "the group has no members, so nobody gets its rights",
			fmt.Sprintf("add people to the group in Slack, or remove %s from %s", t.id, t.varList()))
		return
	}
	c.ok(t.label(), "%d members", len(members))
}

func (c *checker) user(ctx context.Context, t target) {
	u, err := c.slack.GetUserInfoContext(ctx, t.id)
	if err != nil {
		fix, ok := commonSlackFix(err)
		if !ok {
			fix = fmt.Sprintf("check the ID in %s (profile → ⋮ → Copy member ID)", t.varList())
		}
		c.fail(t.label(), slackDetail("users.info", err), fix)
		return
	}
	who := "@" + u.Name
	switch {
	case u.Deleted:
		c.fail(t.label(), who+" is deactivated", fmt.Sprintf("remove %s from %s", t.id, t.varList()))
	case u.Profile.Email == "":
		// The bot refuses anyone whose email it cannot read: it could not
		// tell whether they are resetting their own score.
		c.fail(t.label(), "Slack shows no email for "+who+", so the bot refuses their requests and approvals",
			"make sure the app has users:read.email (reinstall it from manifest.yml) and the user has an email address")
	default:
		c.ok(t.label(), "%s", who)
	}
}

// cloudflareToken verifies the API token; it reports whether the
// permission probes can tell anything.
func (c *checker) cloudflareToken(ctx context.Context) bool {
	const name = "Cloudflare API token"
	status, err := c.cf.VerifyToken(ctx)
	switch {
	case errors.Is(err, cloudflare.ErrTokenVerifyUnsupported):
		c.skip("Cloudflare credentials", "key auth: token check not applicable; the probes below test the email and key")
		return true
	case err != nil:
		c.fail(name, err.Error(), cloudflareFix(err,
			"Cloudflare does not accept CLOUDFLARE_API_TOKEN: copy it again, or create a new token (My Profile → API Tokens, or Manage Account → API Tokens) with the permissions listed in README.md"))
		return false
	case !status.Active():
		c.fail(name, fmt.Sprintf("the token is %s", status.Status),
			"create a new token with the permissions listed in README.md and set CLOUDFLARE_API_TOKEN")
		return false
	}
	detail := fmt.Sprintf("active (%s token)", status.Scope)
	if status.ExpiresOn != nil {
		detail += ", expires " + status.ExpiresOn.UTC().Format(time.DateOnly)
	}
	c.ok(name, "%s", detail)
	return true
}

// cloudflareFix explains errors any Cloudflare call can get; authFix is
// the advice for an HTTP 4xx refusal.
func cloudflareFix(err error, authFix string) string {
	var rl *cloudflare.RateLimitError
	var apiErr *cloudflare.APIError
	switch {
	case errors.As(err, &rl):
		return "Cloudflare is rate limiting these credentials; run the check again in a few minutes"
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound:
		return "Cloudflare does not know this path: check CLOUDFLARE_ACCOUNT_ID (the account's Overview page) and CLOUDFLARE_API_URL"
	case errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500:
		return authFix
	case errors.As(err, &apiErr):
		return "Cloudflare answered with a server error; run the check again later"
	}
	return "could not reach Cloudflare: check CLOUDFLARE_API_URL, DNS, proxy and firewall, then run the check again"
}

// permissionFix tells how to grant a missing permission.
func (c *checker) permissionFix(perm, where, without string) string {
	if c.cfg.CloudflareAuthScheme() == config.AuthSchemeKey {
		return "Cloudflare refused CLOUDFLARE_API_EMAIL with CLOUDFLARE_API_KEY: check both, and that this user belongs to the account (better: use an API token)"
	}
	return fmt.Sprintf("add %q (%s) to the API token; %s", perm, where, without)
}

func (c *checker) auditLogsRead(ctx context.Context) {
	const perm = cloudflare.PermAuditLogsRead
	name := "Cloudflare: " + perm
	_, err := c.cf.FindUserByEmail(ctx, probeEmail)
	var permErr *cloudflare.PermissionError
	var ambiguous *cloudflare.AmbiguousUserError
	switch {
	case err == nil, errors.Is(err, cloudflare.ErrUserNotFound), errors.As(err, &ambiguous):
		c.ok(name, "looking users up by email is allowed")
	case errors.As(err, &permErr):
		c.fail(name, "the credentials lack "+perm,
			c.permissionFix(perm, "Account → Access: Audit Logs → Read", "without it only Cloudflare user IDs work as targets"))
	default:
		c.fail(name, "could not check: "+err.Error(), cloudflareFix(err, "check CLOUDFLARE_ACCOUNT_ID and the credentials, then run the check again"))
	}
}

// piiRead reads the risk of a made-up user: Cloudflare refuses with 403
// when the permission is missing and answers "not found" otherwise.
func (c *checker) piiRead(ctx context.Context) {
	const perm = cloudflare.PermZeroTrustPIIRead
	name := "Cloudflare: " + perm
	_, err := c.cf.GetUserRisk(ctx, uuid.NewString())
	var permErr *cloudflare.PermissionError
	var rl *cloudflare.RateLimitError
	var apiErr *cloudflare.APIError
	switch {
	case errors.As(err, &permErr):
		c.fail(name, "the credentials lack "+perm,
			c.permissionFix(perm, "Account → Zero Trust PII → Read", "without it cards show no risk and resets are not verified"))
	case err == nil:
		c.ok(name, "probe read allowed")
	case !errors.As(err, &rl) && errors.As(err, &apiErr) && isUnknownUserAnswer(apiErr):
		c.ok(name, "probe read allowed (HTTP %d for a made-up user, as expected)", apiErr.StatusCode)
	default:
		c.fail(name, "could not check: "+err.Error(), cloudflareFix(err, "check CLOUDFLARE_ACCOUNT_ID and the credentials, then run the check again"))
	}
}

// notAboutTheUser are Cloudflare's error codes for refusals that are not
// about the made-up user: credentials it does not accept at all (bad or
// missing X-Auth-* headers, unknown key, bad token), and "no route" for a
// wrong account id or API path.
var notAboutTheUser = []int{6003, 6100, 6101, 6102, 6103, 6111, 7003, 9103, 9106, 9109, 10000, 10001}

// isUnknownUserAnswer reports whether a refusal of the probe read is
// Cloudflare not knowing the made-up user (404, or a 400 about the user),
// which means the credentials got past the permission check.
func isUnknownUserAnswer(e *cloudflare.APIError) bool {
	if e.StatusCode != http.StatusNotFound && e.StatusCode != http.StatusBadRequest {
		return false
	}
	return !slices.ContainsFunc(notAboutTheUser, e.HasCode)
}

func (c *checker) zeroTrustWrite() {
	const perm = cloudflare.PermZeroTrustWrite
	c.skip("Cloudflare: "+perm, fmt.Sprintf("cannot be checked without resetting a score; make sure the credentials have %q (Account → Zero Trust → Edit), or every reset fails", perm))
}

// secretsOf lists the values the output must never show: tokens, the key,
// and passwords embedded in the API URLs.
func secretsOf(cfg *config.Config) []string {
	secrets := []string{cfg.SlackBotToken, cfg.SlackAppToken, cfg.CloudflareAPIToken, cfg.CloudflareAPIKey}
	for _, raw := range []string{cfg.SlackAPIURL, cfg.CloudflareAPIURL} {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			p, _ := u.User.Password()
			secrets = append(secrets, u.User.Username(), p)
		}
	}
	return slices.DeleteFunc(secrets, func(s string) bool { return s == "" })
}

// cell keeps a value on one line and removes any secret from it, in case a
// server echoed one back.
func cell(s string, secrets []string) string {
	for _, secret := range secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

func writeCheckTable(out io.Writer, rows []checkRow, secrets []string) {
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "CHECK\t| RESULT\t| DETAIL / FIX")
	for _, r := range rows {
		text := r.detail
		if r.fix != "" {
			text += ". Fix: " + r.fix
		}
		fmt.Fprintf(tw, "%s\t| %s\t| %s\n", cell(r.name, secrets), r.result, cell(text, secrets))
	}
	_ = tw.Flush()
}

func checkSummary(out io.Writer, rows []checkRow) error {
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.result]++
	}
	fmt.Fprintf(out, "\n%d checks: %d OK, %d FAIL, %d WARN, %d SKIP\n",
		len(rows), counts[checkOK], counts[checkFail], counts[checkWarn], counts[checkSkip])
	if n := counts[checkFail]; n > 0 {
		return fmt.Errorf("%d of %d checks failed; see DETAIL / FIX above", n, len(rows))
	}
	return nil
}
