package main

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// connectedLogs counts "connected to slack socket mode" lines.
var connectedLogs = map[string]string{"message": "connected to slack socket mode"}

func TestHealthAndReadinessFollowTheConnection(t *testing.T) {
	h := newHarness(t)
	h.start()
	if err := h.logs.waitLog(h.ctx, 1, connectedLogs); err != nil {
		t.Fatal(err)
	}
	if code, _ := h.httpGet("/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, body := h.httpGet("/readyz"); code != 200 {
		t.Fatalf("/readyz while connected = %d %q, want 200", code, body)
	}

	// Hold the reconnection at apps.connections.open, so the bot is
	// observably disconnected.
	release := make(chan struct{})
	opening := make(chan struct{}, 1)
	h.slack.SetHook(func(method string, _ url.Values) (int, any, bool) {
		if method == "apps.connections.open" {
			select {
			case opening <- struct{}{}:
			default:
			}
			<-release
		}
		return 0, nil, false
	})
	h.slack.DropConnections()
	h.await(opening, "the bot did not try to reconnect")
	code, body := h.httpGet("/readyz")
	if code != 503 || !strings.Contains(body, "not connected") {
		t.Errorf("/readyz while disconnected = %d %q, want 503 naming the connection", code, body)
	}
	if code, _ := h.httpGet("/healthz"); code != 200 {
		t.Errorf("/healthz while disconnected = %d, want 200 (the process is alive)", code)
	}
	close(release)
	h.slack.SetHook(nil)
	if err := h.logs.waitLog(h.ctx, 2, connectedLogs); err != nil {
		t.Fatal(err)
	}
	if code, body := h.httpGet("/readyz"); code != 200 {
		t.Errorf("/readyz after reconnecting = %d %q, want 200", code, body)
	}
	if _, metrics := h.httpGet("/metrics"); !strings.Contains(metrics, "risk_reset_socket_mode_reconnects_total 1") {
		t.Errorf("reconnect not counted:\n%s", grepLines(metrics, "reconnects"))
	}
}

func TestMetricsAfterAReset(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.command(analyst, channelOps, aliceEmail+" travel")
	card := h.card(channelOps, aliceID)
	h.threadReply(card, "Requested by") // posted after the card is counted
	h.click(lead, card, "risk_reset_approve")
	h.threadReply(card, "Done")

	_, m := h.httpGet("/metrics")
	for _, want := range []string{
		`risk_reset_commands_total{result="card_posted"} 1`,
		`risk_reset_decisions_total{kind="approved"} 1`,
		`risk_reset_resets_total{cf_code="none",result="succeeded"} 1`,
		`risk_reset_cloudflare_request_duration_seconds_count{operation="reset",status="2xx"} 1`,
		`risk_reset_pending_requests 0`,
		`risk_reset_build_info{goversion=`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, leak := range []string{aliceEmail, aliceID, analyst, lead, cfToken} {
		if strings.Contains(m, leak) {
			t.Errorf("metrics expose %q", leak)
		}
	}
}

func TestFatalSlackErrorsEndRun(t *testing.T) {
	for _, code := range []string{"invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type", "missing_scope", "link_disabled"} {
		t.Run(code, func(t *testing.T) {
			h := newHarness(t)
			h.slack.FailNext("apps.connections.open", code)
			h.runUntilExit(t, code)
		})
	}
	t.Run("bot token refused", func(t *testing.T) {
		h := newHarness(t)
		h.slack.FailNext("auth.test", "invalid_auth")
		h.runUntilExit(t, "invalid_auth")
	})
}

// TestBotTokenRevokedWhileRunningEndsRun: once Slack answers that the bot
// token was revoked, no card, outcome or audit record can be posted, so
// the bot stops with the reason instead of running on deaf, as it would at
// start.
func TestBotTokenRevokedWhileRunningEndsRun(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.slack.FailNext("chat.postMessage", "token_revoked")
	h.slack.FailNext("auth.test", "token_revoked") // the bot's check agrees
	h.command(analyst, channelOps, aliceEmail+" travel")
	select {
	case err := <-h.done:
		if err == nil || !strings.Contains(err.Error(), "token_revoked") || !strings.Contains(err.Error(), "SLACK_BOT_TOKEN") {
			t.Errorf("run returned %v, want an error naming token_revoked and SLACK_BOT_TOKEN", err)
		}
	case <-h.ctx.Done():
		t.Fatalf("run kept going after token_revoked:\n%s", h.logs.String())
	}
	h.stop() // it has returned; this only tells the harness so
	h.stop = nil
	if lines := h.logs.logLines(map[string]string{"level": "error", "message": "slack no longer accepts the bot token; stopping"}); len(lines) != 1 {
		t.Errorf("%d error lines saying why the bot stopped, want 1", len(lines))
	}
}

// TestStoppingForARevokedTokenSaysSo: while the bot drains because Slack
// refuses its token, people who type the command are told why, not to try
// again in a minute.
func TestStoppingForARevokedTokenSaysSo(t *testing.T) {
	h := newHarness(t, withEnv("SHUTDOWN_TIMEOUT", "2s"))
	h.approveWithResetAtCloudflare(cfapitest.Fault{Hang: true}) // keeps the drain open
	h.slack.FailNext("chat.postMessage", "token_revoked")
	h.slack.FailNext("auth.test", "token_revoked")
	h.command(analyst, channelOps, bobEmail+" travel")
	if err := h.logs.waitLog(h.ctx, 1, map[string]string{"message": "stopping: finishing in-flight work"}); err != nil {
		t.Fatal(err)
	}
	_, ack := h.command(analyst, channelOps, "carol@example.com travel")
	if !strings.Contains(string(ack.Payload), "no longer accepts its token") {
		t.Errorf("ack while stopping for a revoked token = %s, want it to say so", ack.Payload)
	}
	select {
	case err := <-h.done:
		if err == nil || !strings.Contains(err.Error(), "token_revoked") {
			t.Errorf("run returned %v, want an error naming token_revoked", err)
		}
	case <-h.ctx.Done():
		t.Fatal("run did not return")
	}
	h.stop()
	h.stop = nil
}

// TestOneRefusalOfTheBotTokenIsCheckedFirst: a single invalid_auth that
// auth.test does not confirm (a Slack hiccup) leaves the bot running.
func TestOneRefusalOfTheBotTokenIsCheckedFirst(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.slack.FailNext("chat.postMessage", "invalid_auth")
	h.command(analyst, channelOps, aliceEmail+" travel")
	if err := h.logs.waitLog(h.ctx, 1, map[string]string{"message": "slack refused the bot token once, but auth.test accepts it; carrying on"}); err != nil {
		t.Fatal(err)
	}
	h.command(analyst, channelOps, bobEmail+" travel")
	h.card(channelOps, bobID)
	select {
	case err := <-h.done:
		t.Fatalf("run returned %v after one refusal that auth.test did not confirm", err)
	default:
	}
}

// TestSlackUnavailableAtStartIsWaitedOut: a Slack outage while the bot
// starts delays it instead of ending it, and the bot serves once Slack
// answers.
func TestSlackUnavailableAtStartIsWaitedOut(t *testing.T) {
	h := newHarness(t)
	var failed atomic.Int32
	h.slack.SetHook(func(method string, _ url.Values) (int, any, bool) {
		if method == "auth.test" && failed.Add(1) == 1 {
			return http.StatusServiceUnavailable, "upstream unavailable", true
		}
		return 0, nil, false
	})
	h.start()

	retries := h.logs.logLines(map[string]string{"message": "slack is not reachable at start; retrying", "level": "warn"})
	if len(retries) != 1 {
		t.Errorf("%d start-up retry warnings, want 1:\n%s", len(retries), h.logs.String())
	}
	if n := len(h.slack.Calls("auth.test")); n != 2 {
		t.Errorf("%d auth.test calls, want the failed one and one more", n)
	}
	h.command(analyst, channelOps, aliceEmail+" travel")
	h.card(channelOps, aliceID)
}

// runUntilExit runs the bot and expects run to return an error naming want.
func (h *harness) runUntilExit(t *testing.T, want string) {
	t.Helper()
	var environ []string
	for k, v := range h.env {
		environ = append(environ, k+"="+v)
	}
	done := make(chan error, 1)
	go func() { done <- run(h.ctx, nil, environ, h.logs) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("run returned %v, want an error naming %s", err, want)
		}
	case <-h.ctx.Done():
		t.Fatalf("run kept going after %s:\n%s", want, h.logs.String())
	}
	if n := len(h.logs.logLines(map[string]string{"level": "error"})); n == 0 {
		t.Errorf("no error line logged for %s", want)
	}
}

// approveWithResetAtCloudflare starts the bot, has alice's reset requested
// and approved, and returns her card once the reset has reached Cloudflare,
// which answers it as fault says.
func (h *harness) approveWithResetAtCloudflare(fault cfapitest.Fault) slackfake.Message {
	h.t.Helper()
	arrived := make(chan struct{}, 1)
	fault.Notify = arrived
	h.cf.Inject(cfapitest.OpResetRisk, fault)
	h.start()
	h.command(analyst, channelOps, aliceEmail+" travel")
	card := h.card(channelOps, aliceID)
	h.click(lead, card, "risk_reset_approve")
	h.await(arrived, "the reset never reached Cloudflare")
	return card
}

func TestStopDuringAResetFinishesItAndExitsCleanly(t *testing.T) {
	h := newHarness(t)
	card := h.approveWithResetAtCloudflare(cfapitest.Fault{Delay: 300 * time.Millisecond})

	h.stop() // what SIGTERM does through main's signal context
	h.stop = nil
	// A command arriving while the bot drains is acked with a notice.
	if err := h.logs.waitLog(h.ctx, 1, map[string]string{"message": "stopping: finishing in-flight work"}); err != nil {
		t.Fatal(err)
	}
	id, err := h.slack.SendSlashCommand(h.ctx, slackfake.SlashCommand{UserID: analyst, ChannelID: channelOps, Text: bobEmail + " travel"})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := h.slack.WaitAck(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ack.Payload), "restarting") {
		t.Errorf("ack during shutdown = %s, want a restarting notice", ack.Payload)
	}

	h.awaitExit(h.done)
	h.threadReply(card, "Done")
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
	if n := h.cf.Resets(bobID); n != 0 {
		t.Errorf("a command during shutdown reset bob %d times", n)
	}
}

// TestStopTimeoutEndsARunningResetVisibly: without Redis nobody settles a
// reset the stopping bot leaves behind, so when SHUTDOWN_TIMEOUT runs out
// with a reset still running, the card, its thread and the audit channel
// say its outcome is unknown instead of "resetting…" for good.
func TestStopTimeoutEndsARunningResetVisibly(t *testing.T) {
	h := newHarness(t, withEnv("SHUTDOWN_TIMEOUT", "200ms"))
	card := h.approveWithResetAtCloudflare(cfapitest.Fault{Hang: true})

	h.stop()
	h.stop = nil
	h.awaitExit(h.done)
	reply := h.threadReply(card, "unknown whether Cloudflare applied it")
	if !strings.Contains(reply.Text, "SHUTDOWN_TIMEOUT") {
		t.Errorf("thread reply %q does not say why the outcome is unknown", reply.Text)
	}
	if final := h.current(card); hasButtons(final) || strings.Contains(final.Text, "resetting") {
		t.Errorf("card after the stop still looks running: %+v", final)
	}
	h.auditRecord("unknown whether Cloudflare applied it")
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestHealthcheckSubcommandAgainstARunningBot(t *testing.T) {
	h := newHarness(t)
	h.start()
	var addr string
	select {
	case addr = <-h.addr:
		h.addr <- addr
	case <-h.ctx.Done():
		t.Fatal("the health server never started")
	}
	var out strings.Builder
	if err := run(h.ctx, []string{"healthcheck"}, []string{"HTTP_ADDR=" + addr}, &out); err != nil {
		t.Fatalf("healthcheck against the running bot: %v (%s)", err, out.String())
	}
	h.shutdown()
	if err := run(h.ctx, []string{"healthcheck"}, []string{"HTTP_ADDR=" + addr}, &out); err == nil {
		t.Error("healthcheck succeeded after the bot stopped")
	}
}

func TestMissingPingsRebuildTheConnection(t *testing.T) {
	h := newHarness(t,
		withSlackOptions(slackfake.WithPingInterval(20*time.Millisecond)),
		withRunOptions(withPingTimeout(200*time.Millisecond)))
	h.start()
	if err := h.logs.waitLog(h.ctx, 1, connectedLogs); err != nil {
		t.Fatal(err)
	}
	h.slack.StopPings()
	// The bot notices the silence and connects again.
	if err := h.logs.waitLog(h.ctx, 2, connectedLogs); err != nil {
		t.Fatal(err)
	}
	h.slack.ResumePings()
	if err := h.slack.WaitConnected(h.ctx, 1); err != nil {
		t.Fatal(err)
	}
	h.command(analyst, channelOps, aliceEmail+" travel")
	card := h.card(channelOps, aliceID)
	h.click(lead, card, "risk_reset_approve")
	h.threadReply(card, "Done")
}

// Without a shared store, a stopping bot ends its pending requests where
// people see them, instead of leaving cards with buttons nobody serves.
func TestStopEndsPendingRequestsVisibly(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.command(analyst, channelOps, aliceEmail+" travel")
	card := h.card(channelOps, aliceID)
	h.threadReply(card, "Requested by")
	h.shutdown()

	h.waitCard(card, "the bot restarted before anyone decided")
	h.threadReply(card, "the bot restarted before anyone decided")
	h.auditRecord("the bot restarted before anyone decided")
	if got := h.cf.Resets(aliceID); got != 0 {
		t.Errorf("resets = %d, want 0", got)
	}
}

// With the in-memory store, a click on a card from before a restart is
// answered, and the card retired, rather than ignored.
func TestClickAfterRestartWithoutRedis(t *testing.T) {
	h := newHarness(t)
	a := h.startReplica()
	h.command(analyst, channelOps, aliceEmail+" travel")
	card := h.card(channelOps, aliceID)
	a.shutdown()

	h.startReplica()
	h.click(lead, card, "risk_reset_approve")
	h.ephemeral(lead, "no longer known to the bot")
	h.waitCard(card, "no longer known to the bot")
	if got := h.cf.Resets(aliceID); got != 0 {
		t.Errorf("resets = %d, want 0", got)
	}
}
