package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// TestNoSecretLeaks runs requests through Cloudflare and Slack failures at
// trace level, then searches everything the bot said anywhere (logs,
// Slack, acks, metrics, the error run returns) for the credentials and
// the logs for response_url secrets.
func TestNoSecretLeaks(t *testing.T) {
	t.Run("api token", func(t *testing.T) {
		h := newHarness(t, withEnv("LOG_LEVEL", "trace"))
		checkNoSecretLeaks(t, h, cfToken)
	})
	t.Run("legacy key", func(t *testing.T) {
		const email, key = "soc@example.com", "cf-key-SECRET-leaktest-000000000000000000"
		h := newHarness(t, withEnv("LOG_LEVEL", "trace"),
			withEnv("CLOUDFLARE_API_TOKEN", ""),
			withEnv("CLOUDFLARE_API_EMAIL", email),
			withEnv("CLOUDFLARE_API_KEY", key))
		h.cf.SetAPIKey(email, key)
		checkNoSecretLeaks(t, h, key)
	})
}

func checkNoSecretLeaks(t *testing.T, h *harness, cfSecret string) {
	h.cf.Inject(cfapitest.OpResetRisk, cfapitest.Fault{Status: http.StatusForbidden, Code: cfapitest.CodeAuthentication, Message: "Authentication error"})
	h.start()
	runLeakFlow(t, h)
	_, metrics := h.httpGet("/metrics")
	runErr := h.failRun()

	secrets := map[string]string{
		"Slack bot token": h.slack.BotToken(), "Slack app token": h.slack.AppToken(), "Cloudflare credential": cfSecret,
	}
	places := map[string]string{
		"logs": h.logs.String(), "Slack": h.slackTraffic() + viewsText(h), "metrics": metrics, "run's error": runErr.Error(),
	}
	for name, secret := range secrets {
		// The first five characters are the token prefix, which may be named.
		for _, s := range []string{secret, secret[5:]} {
			for where, text := range places {
				if strings.Contains(text, s) {
					t.Errorf("the %s appears in %s", name, where)
				}
			}
		}
	}
	for _, c := range h.slack.Calls("") {
		if tok := c.Form.Get("token"); tok != "" && tok != h.slack.BotToken() && tok != h.slack.AppToken() {
			t.Errorf("%s carried a token that is not Slack's", c.Method)
		}
	}

	secretPaths := responseURLSecrets(h)
	if len(secretPaths) == 0 {
		t.Fatal("no response_url was posted to; the flow did not exercise them")
	}
	// The deny form's private_metadata carries the click's response_url,
	// to answer the approver if the denial loses: Slack issued that URL,
	// and hands private_metadata back to the app without showing it to
	// anyone. Anywhere else, a response_url's secret path is a leak.
	urlPlaces := maps.Clone(places)
	urlPlaces["Slack"] = withoutPrivateMetadata(t, h, h.slackTraffic())
	for _, s := range secretPaths {
		for where, text := range urlPlaces {
			if strings.Contains(text, s) {
				t.Errorf("the secret path of a response_url appears in %s", where)
			}
		}
	}
	if len(h.logs.logLines(map[string]string{"level": "debug"})) == 0 {
		t.Error("no debug lines logged; the test did not exercise verbose logging")
	}
}

// runLeakFlow walks requests through the failures whose errors are most
// likely to carry a credential: Cloudflare refusing and failing, Slack
// failing, refusals and bad input.
func runLeakFlow(t *testing.T, h *harness) {
	t.Helper()
	// Cloudflare refuses the reset with 403 (queued before start).
	card := h.pendingCard()
	h.click(lead, card, "risk_reset_approve")
	h.waitCard(card, "Reset failed")
	h.threadReply(card, "the reset failed")

	// Cloudflare answers 503 to the lookup (retried) and 500 to the reset
	// (settled by reading it back); Slack fails the card's update.
	h.cf.Inject(cfapitest.OpListUsers, cfapitest.Fault{Status: http.StatusServiceUnavailable})
	h.command(analyst, channelOps, bobEmail+" new laptop")
	bobCard := h.card(channelOps, bobID)
	h.threadReply(bobCard, "Requested by")
	h.cf.Inject(cfapitest.OpResetRisk, cfapitest.Fault{Status: http.StatusInternalServerError, ApplyFirst: true})
	h.slack.FailNext("chat.update", "internal_error")
	h.click(lead, bobCard, "risk_reset_approve")
	h.waitCard(bobCard, "Risk score reset")
	h.threadReply(bobCard, "Done")

	// An approver denies through the reason form, whose private_metadata
	// makes a round trip through Slack; a second form loses to the
	// requester's cancel, so its approver is answered on the response_url
	// that metadata carried.
	h.command(analyst, channelOps, bobEmail+" second look")
	denied := h.waitNewCard(bobCard, bobID)
	h.threadReply(denied, "Requested by")
	h.denyWithReason(lead2, denied, "not a false positive, INC-4712")
	h.waitCard(denied, "Denied by <@"+lead2+">")
	h.threadReply(denied, "Reason: not a false positive, INC-4712")
	h.command(analyst, channelOps, bobEmail+" third look")
	late := h.waitNewCard(denied, bobID)
	h.threadReply(late, "Requested by")
	form := h.openDenyForm(lead2, late)
	h.click(analyst, late, "risk_reset_reject")
	h.waitCard(late, "Cancelled by <@"+analyst+">")
	h.submitDenyForm(lead2, form, "too late")
	h.ephemeral(lead2, "already cancelled by <@"+analyst+">")
	if views := h.slack.Views(); len(views) != 2 || views[0].CallbackID != "risk_reset_deny" || views[1].PrivateMetadata == "" {
		t.Errorf("the deny forms were not opened with their metadata as planned: %+v", views)
	}

	// Slack: the bot is not in the channel.
	h.command(analyst, channelOther, aliceEmail+" travel")
	h.ephemeral(analyst, "not a member")

	// A refused command, a refused click, bad input, then a reset that
	// goes through.
	h.command(stranger, channelOps, aliceEmail+" please")
	h.ephemeral(stranger, "not allowed to request")
	h.command(analyst, channelOps, aliceEmail+" again")
	again := h.waitNewCard(card, aliceID)
	h.threadReply(again, "Requested by")
	h.click(stranger, again, "risk_reset_approve")
	h.ephemeral(stranger, "not an approver")
	_, ack := h.command(analyst, channelOps, "<!here>")
	if text := usageAck(t, ack); !strings.Contains(text, "Group mentions") {
		t.Errorf("bad input answered with %q", text)
	}
	h.click(lead, again, "risk_reset_approve")
	h.waitCard(again, "Risk score reset")
	h.threadReply(again, "Done")

	failedUpdates := 0
	for _, c := range h.slack.Calls("chat.update") {
		if c.Error == "internal_error" {
			failedUpdates++
		}
	}
	if failedUpdates != 1 || h.cf.Resets(aliceID) != 1 || h.cf.Resets(bobID) != 1 {
		t.Errorf("the flow did not go as planned: %d failed chat.update, %d resets of Alice, %d of Bob; want 1 each",
			failedUpdates, h.cf.Resets(aliceID), h.cf.Resets(bobID))
	}
}

// failRun makes run end with an error, as a revoked app token does, and
// returns that error.
func (h *harness) failRun() error {
	h.t.Helper()
	h.slack.FailNext("apps.connections.open", "invalid_auth")
	if err := h.slack.SendDisconnect(h.ctx, "refresh_requested"); err != nil {
		h.t.Fatalf("disconnect: %v", err)
	}
	var err error
	select {
	case err = <-h.done:
	case <-h.ctx.Done():
		h.t.Fatalf("run kept going after Slack refused the app token:\n%s", h.logs.String())
	}
	// run has returned: the harness must not wait for it again.
	h.stop()
	h.stop = nil
	if err == nil {
		h.t.Fatal("run returned nil after Slack refused the app token")
	}
	return err
}

// withoutPrivateMetadata returns traffic (see slackTraffic) with the
// private_metadata of every view the bot opened or updated taken out.
func withoutPrivateMetadata(t *testing.T, h *harness, traffic string) string {
	t.Helper()
	for _, c := range h.slack.Calls("") {
		if c.Method != "views.open" && c.Method != "views.update" {
			continue
		}
		raw := c.Form.Get("view")
		var view map[string]any
		if err := json.Unmarshal([]byte(raw), &view); err != nil {
			t.Fatalf("%s sent a view that is not JSON: %v", c.Method, err)
		}
		delete(view, "private_metadata")
		stripped, _ := json.Marshal(view)
		traffic = strings.ReplaceAll(traffic, url.QueryEscape(raw), url.QueryEscape(string(stripped)))
	}
	return traffic
}

// viewsText renders the modals the bot opened.
func viewsText(h *harness) string {
	var sb strings.Builder
	for _, v := range h.slack.Views() {
		fmt.Fprintf(&sb, "view %s %s\n", v.PrivateMetadata, v.View)
	}
	return sb.String()
}

// responseURLSecrets returns the secret last path segment of every
// response_url the bot posted to.
func responseURLSecrets(h *harness) []string {
	var out []string
	for _, p := range h.slack.ResponseURLPosts() {
		if i := strings.LastIndex(p.URL, "/"); i >= 0 && len(p.URL)-i > 8 {
			out = append(out, p.URL[i+1:])
		}
	}
	return out
}

// TestResponseURLNotLoggedWhenPostFails answers a refused command through
// a response_url whose host is down: the error logged for it must not
// carry the URL, whose path is a bearer secret for posting as the app.
func TestResponseURLNotLoggedWhenPostFails(t *testing.T) {
	h := newHarness(t)
	h.start()
	const secret = "SECRETresponsePathSegment0000"
	frame := fmt.Sprintf(`{"envelope_id":%q,"type":"slash_commands","accepts_response_payload":true,"payload":{"token":%q,`+
		`"team_id":"T0001","channel_id":%q,"user_id":%q,"command":"/risk-reset","text":"alice@example.com please",`+
		`"api_app_id":"A0001","response_url":"http://%s/commands/T0001/1000000000001/%s","trigger_id":"1.2.3"}}`,
		uuid.NewString(), slackfake.VerificationToken, channelOps, stranger, closedLoopbackAddr(t), secret)
	if err := h.slack.SendEnvelope(h.ctx, []byte(frame)); err != nil {
		t.Fatalf("sending the command: %v", err)
	}
	if err := h.logs.waitLog(h.ctx, 1, map[string]string{"message": "answering the user failed"}); err != nil {
		t.Fatalf("the failed answer was not logged: %v\n%s", err, h.logs.String())
	}
	if logs := h.logs.String(); strings.Contains(logs, secret) {
		t.Errorf("the response_url's secret path is in the logs:\n%s", grepLines(logs, secret))
	}
}

// closedLoopbackAddr returns a loopback address nothing listens on.
func closedLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
