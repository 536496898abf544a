package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"risk-reset-bot/cloudflare"
	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// resetFault is one row of the Cloudflare fault matrix: faults played on
// the reset call, and what the people in the channel must end up seeing.
type resetFault struct {
	name   string
	faults []cfapitest.Fault
	// cfOpts are extra Cloudflare client options (a short timeout or
	// retry budget, a refusing transport).
	cfOpts func(t *testing.T) []cloudflare.Option
	// afterCard runs once the card is posted, before the approval.
	afterCard func(h faultHarness)

	succeeded bool
	resets    int // resets Cloudflare carried out
	// minCalls and maxCalls bound the reset calls Cloudflare received.
	minCalls, maxCalls int
	// says lists what the outcome reply must say; each entry is a set of
	// alternatives separated by "|", matched ignoring case.
	says []string
	// nothingChanged: a failure must say the reset did not happen;
	// unknown: it must say nobody knows whether it did.
	nothingChanged, unknown bool
}

const htmlErrorPage = `<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>` +
	`<body><h1>Error 502</h1><p>Bad gateway. cloudflare</p></body></html>`

var htmlHeader = http.Header{"Content-Type": {"text/html; charset=UTF-8"}}

func repeatFault(f cfapitest.Fault, n int) []cfapitest.Fault {
	out := make([]cfapitest.Fault, n)
	for i := range out {
		out[i] = f
	}
	return out
}

func shortBudget(*testing.T) []cloudflare.Option {
	return []cloudflare.Option{cloudflare.WithRetryBudget(100 * time.Millisecond)}
}

var resetFaults = []resetFault{
	{
		name:      "429 with Retry-After 0 then success",
		faults:    []cfapitest.Fault{{Status: 429, RetryAfter: "0"}},
		succeeded: true, resets: 1, minCalls: 2, maxCalls: 2,
	},
	{
		name:      "429 without Retry-After then success",
		faults:    []cfapitest.Fault{{Status: 429}},
		succeeded: true, resets: 1, minCalls: 2, maxCalls: 2,
	},
	{
		// Waiting 3 s would overrun the 2 s budget, so the bot stops at once.
		name:   "429 asking for a wait beyond the retry budget",
		faults: []cfapitest.Fault{{Status: 429, RetryAfter: "3"}},
		resets: 0, minCalls: 1, maxCalls: 1,
		says:           []string{"rate-limit|rate limit", "429"},
		nothingChanged: true,
	},
	{
		name:   "429 on every attempt until the budget runs out",
		faults: repeatFault(cfapitest.Fault{Status: 429}, 500),
		cfOpts: shortBudget,
		resets: 0, minCalls: 2, maxCalls: 500,
		says:           []string{"rate-limit|rate limit", "429"},
		nothingChanged: true,
	},
	{
		name:      "500 after Cloudflare applied the reset",
		faults:    []cfapitest.Fault{{Status: 500, ApplyFirst: true}},
		succeeded: true, resets: 1, minCalls: 1, maxCalls: 1,
	},
	{
		name:   "500 before Cloudflare applied the reset",
		faults: []cfapitest.Fault{{Status: 500}},
		resets: 0, minCalls: 1, maxCalls: 1,
		says:           []string{"500"},
		nothingChanged: true,
	},
	{
		name:      "502 then success",
		faults:    []cfapitest.Fault{{Status: 502}},
		succeeded: true, resets: 1, minCalls: 2, maxCalls: 2,
	},
	{
		name:      "503 then success",
		faults:    []cfapitest.Fault{{Status: 503}},
		succeeded: true, resets: 1, minCalls: 2, maxCalls: 2,
	},
	{
		// Cloudflare may still be working on a 504'd reset: it is watched
		// for the settle window, then sent again.
		name:      "504 then success",
		faults:    []cfapitest.Fault{{Status: 504}},
		succeeded: true, resets: 1, minCalls: 2, maxCalls: 2,
	},
	{
		// Unanswered, so Cloudflare may yet apply any of them: nobody can
		// say nothing changed.
		name:   "connection dropped without an answer on every attempt",
		faults: repeatFault(cfapitest.Fault{CloseConn: true}, 500),
		cfOpts: shortBudget,
		resets: 0, minCalls: 1, maxCalls: 500,
		unknown: true,
	},
	{
		name: "connection refused",
		cfOpts: func(t *testing.T) []cloudflare.Option {
			return []cloudflare.Option{cloudflare.WithHTTPClient(refusedResets(t)), cloudflare.WithRetryBudget(100 * time.Millisecond)}
		},
		resets: 0, minCalls: 0, maxCalls: 0,
		says:           []string{"could not be reached|unreachable|could not connect"},
		nothingChanged: true,
	},
	{
		name:   "timeout after Cloudflare received and applied the reset",
		faults: []cfapitest.Fault{{Hang: true, ApplyFirst: true}},
		cfOpts: func(*testing.T) []cloudflare.Option {
			return []cloudflare.Option{cloudflare.WithHTTPClient(&http.Client{Timeout: 400 * time.Millisecond})}
		},
		succeeded: true, resets: 1, minCalls: 1, maxCalls: 1,
	},
	{
		// The reset shows only after the bot stopped waiting for the
		// answer; watching the user within the settle window catches it.
		name:   "timeout, Cloudflare applies the reset late",
		faults: []cfapitest.Fault{{Hang: true, ApplyAfter: 300 * time.Millisecond}},
		cfOpts: func(*testing.T) []cloudflare.Option {
			return []cloudflare.Option{cloudflare.WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond}), cloudflare.WithSettleWindow(5 * time.Second)}
		},
		succeeded: true, resets: 1, minCalls: 1, maxCalls: 1,
	},
	{
		name:   "timeout, never applied",
		faults: repeatFault(cfapitest.Fault{Hang: true}, 50),
		cfOpts: func(*testing.T) []cloudflare.Option {
			return []cloudflare.Option{cloudflare.WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond}), cloudflare.WithRetryBudget(100 * time.Millisecond)}
		},
		resets: 0, minCalls: 1, maxCalls: 50,
		says:    []string{"did not answer"},
		unknown: true,
	},
	{
		name: "200 with success:false",
		faults: []cfapitest.Fault{{Status: 200, OffSpec: true,
			Body: `{"success":false,"errors":[{"code":7010,"message":"risk scoring is paused for this account"}],"messages":[],"result":null}`}},
		resets: 0, minCalls: 1, maxCalls: 1,
		says: []string{"7010", "risk scoring is paused for this account", cfapitest.FakeRay},
	},
	{
		name:      "HTML error page after Cloudflare applied the reset",
		faults:    []cfapitest.Fault{{Status: 502, Body: htmlErrorPage, Header: htmlHeader, OffSpec: true, ApplyFirst: true}},
		succeeded: true, resets: 1, minCalls: 1, maxCalls: 1,
	},
	{
		name:   "HTML error page before Cloudflare applied the reset",
		faults: []cfapitest.Fault{{Status: 520, Body: htmlErrorPage, Header: htmlHeader, OffSpec: true}},
		resets: 0, minCalls: 1, maxCalls: 1,
		says:           []string{"520"},
		nothingChanged: true,
	},
	{
		name:      "truncated JSON after Cloudflare applied the reset",
		faults:    []cfapitest.Fault{{Status: 200, Body: `{"success":true,"errors":[],"mess`, ShortBody: true, ApplyFirst: true}},
		succeeded: true, resets: 1, minCalls: 1, maxCalls: 1,
	},
	{
		name:      "slow answer",
		faults:    []cfapitest.Fault{{Delay: 300 * time.Millisecond}},
		succeeded: true, resets: 1, minCalls: 1, maxCalls: 1,
	},
	{
		name:   "500 and the read-back fails too",
		faults: []cfapitest.Fault{{Status: 500}},
		afterCard: func(h faultHarness) {
			h.cf.Inject(cfapitest.OpGetUserRisk, cfapitest.Fault{Status: 500})
		},
		resets: 0, minCalls: 1, maxCalls: 1,
		unknown: true,
	},
}

// TestFaultCloudflareReset plays each Cloudflare fault on the reset call
// of an approved request and checks what people see: the card's final
// status, one outcome reply in plain words, one audit record, and no
// duplicate reset.
func TestFaultCloudflareReset(t *testing.T) {
	t.Parallel()
	for _, tc := range resetFaults {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts []cloudflare.Option
			if tc.cfOpts != nil {
				opts = tc.cfOpts(t)
			}
			h := faultHarness{newHarness(t)}
			h.cf.Inject(cfapitest.OpResetRisk, tc.faults...)
			h.startWith(opts...)
			card := h.pendingCard()
			if tc.afterCard != nil {
				tc.afterCard(h)
			}

			s := h.approveAndSettle(card)
			h.assertVisible(s, tc.succeeded)
			reply := s.reply()
			if tc.succeeded && (!strings.Contains(reply, "verified") || strings.Contains(reply, "not verified")) {
				t.Errorf("reply does not say the reset was verified: %q", reply)
			}
			for _, want := range tc.says {
				if !containsAny(reply, strings.Split(want, "|")...) {
					t.Errorf("reply does not say %q: %q", want, reply)
				}
			}
			if tc.nothingChanged && !saysNothingChanged(reply) {
				t.Errorf("reply does not say the reset did not happen (Cloudflare was read back, or never reached): %q", reply)
			}
			if tc.unknown && (!saysOutcomeUnknown(reply) || saysNothingChanged(reply)) {
				t.Errorf("reply does not say whether the reset happened is unknown, or says nothing changed: %q", reply)
			}
			if n := h.cf.Resets(aliceID); n != tc.resets {
				t.Errorf("resets = %d, want %d", n, tc.resets)
			}
			if n := h.cf.Calls(cfapitest.OpResetRisk); n < tc.minCalls || n > tc.maxCalls {
				t.Errorf("%d reset calls reached Cloudflare, want %d to %d", n, tc.minCalls, tc.maxCalls)
			}
		})
	}
}

// TestFaultRiskUnreadableWhileResolving: a 403 reading the risk while the
// card is built leaves the risk "unavailable" on the card, and the request
// goes on to a verified reset once the read works again.
func TestFaultRiskUnreadableWhileResolving(t *testing.T) {
	t.Parallel()
	h := faultHarness{newHarness(t)}
	h.cf.Inject(cfapitest.OpGetUserRisk, cfapitest.Fault{Status: 403})
	h.startWith()

	card := h.pendingCard()
	text := blockText(t, card)
	if !strings.Contains(text, "unavailable") || !strings.Contains(text, cloudflare.PermZeroTrustPIIRead) {
		t.Errorf("card does not say the risk is unavailable and which permission is missing: %s", text)
	}
	s := h.approveAndSettle(card)
	h.assertVisible(s, true)
	if reply := s.reply(); strings.Contains(reply, "not verified") {
		t.Errorf("reset read back fine but the reply says %q", reply)
	}
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
}

// TestFaultUserLookupForbidden: a 403 on the email lookup is answered with
// the missing permission, and leaves nothing pending.
func TestFaultUserLookupForbidden(t *testing.T) {
	t.Parallel()
	h := faultHarness{newHarness(t)}
	h.cf.Inject(cfapitest.OpListUsers, cfapitest.Fault{Status: 403})
	h.startWith()

	h.command(analyst, channelOps, aliceEmail+" travel")
	p := h.ephemeral(analyst, cloudflare.PermAuditLogsRead)
	if !strings.Contains(p.Text, "Nothing was changed") {
		t.Errorf("ephemeral does not say nothing was changed: %q", p.Text)
	}
	h.assertNoCard()

	h.command(analyst, channelOps, aliceEmail+" travel")
	h.threadReply(h.card(channelOps, aliceID), "Requested by")
	if got := h.answersTo(analyst, "already a pending request"); len(got) != 0 {
		t.Errorf("the refused lookup left a pending request: %q", got)
	}
	if n := h.cf.Calls(cfapitest.OpResetRisk); n != 0 {
		t.Errorf("%d reset calls, want 0", n)
	}
}

// TestFaultSlackRateLimitedCard waits out a 429 on the card (Slack's
// Retry-After is whole seconds, so this takes one) and the request then
// runs to its end as usual.
func TestFaultSlackRateLimitedCard(t *testing.T) {
	t.Parallel()
	h := faultHarness{newHarness(t)}
	h.slack.RateLimitNext("chat.postMessage", time.Second)
	h.startWith()

	card := h.pendingCard()
	calls := h.slack.Calls("chat.postMessage")
	if len(calls) < 2 || calls[0].Status != http.StatusTooManyRequests || calls[1].Status != http.StatusOK {
		t.Fatalf("chat.postMessage: want a 429 then a 200, got %+v", calls)
	}
	if got := len(h.cards(channelOps, aliceID)); got != 1 {
		t.Errorf("%d cards, want 1", got)
	}
	h.assertVisible(h.approveAndSettle(card), true)
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
}

// TestFaultSlackNotInChannelForCard: Slack refuses the card with
// not_in_channel; the requester is told how to fix it and no pending
// request is left behind to block the next try.
func TestFaultSlackNotInChannelForCard(t *testing.T) {
	t.Parallel()
	h := faultHarness{newHarness(t)}
	h.slack.FailNext("chat.postMessage", "not_in_channel")
	h.startWith()

	h.command(analyst, channelOps, aliceEmail+" travel")
	p := h.ephemeral(analyst, "not a member of <#"+channelOps+">")
	if !strings.Contains(p.Text, "/invite") || !strings.Contains(p.Text, "Nothing was changed") {
		t.Errorf("ephemeral does not say how to invite the bot and that nothing changed: %q", p.Text)
	}
	h.assertNoCard()

	h.command(analyst, channelOps, aliceEmail+" travel")
	h.threadReply(h.card(channelOps, aliceID), "Requested by")
	if got := h.answersTo(analyst, "already a pending request"); len(got) != 0 {
		t.Errorf("the failed card left a pending request behind: %q", got)
	}
	if n := h.cf.Calls(cfapitest.OpResetRisk); n != 0 {
		t.Errorf("%d reset calls, want 0", n)
	}
}

// TestFaultSlackFinalCardUpdateFails: when Slack refuses the card's last
// update, the outcome still reaches the thread and the audit channel.
func TestFaultSlackFinalCardUpdateFails(t *testing.T) {
	t.Parallel()
	h := faultHarness{newHarness(t)}
	h.slack.SetHook(func(method string, form url.Values) (int, any, bool) {
		if method == "chat.update" && form.Get("channel") == channelOps && strings.Contains(form.Get("text"), "(succeeded)") {
			return http.StatusOK, map[string]any{"ok": false, "error": "internal_error"}, true
		}
		return 0, nil, false
	})
	h.startWith()

	card := h.pendingCard()
	s := h.approveAndSettle(card)
	if !hasFailedCall(h.slack.Calls("chat.update"), "internal_error") {
		t.Fatalf("the card's final update was never attempted; the test did not exercise the fault")
	}
	if len(s.outcomes) != 1 || !strings.Contains(s.reply(), "Done") {
		t.Errorf("thread outcome replies = %q, want one saying Done", texts(s.outcomes))
	}
	if len(s.records) != 1 || !strings.Contains(s.records[0].Text, "Risk reset succeeded") {
		t.Errorf("audit records = %q, want one saying the reset succeeded", texts(s.records))
	}
	if hasButtons(s.card) {
		t.Errorf("the card still offers its buttons: %s", blockText(t, s.card))
	}
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
}

// TestFaultSlack5xxOnTheOutcomeIsRetried: Slack answering 503 to the
// final card update, the outcome reply and the audit record (each once)
// delays them; none is lost, and the card does not stay on "resetting…".
func TestFaultSlack5xxOnTheOutcomeIsRetried(t *testing.T) {
	t.Parallel()
	h := faultHarness{newHarness(t)}
	var mu sync.Mutex
	failed := map[string]bool{}
	failOnce := func(what string) bool {
		mu.Lock()
		defer mu.Unlock()
		if failed[what] {
			return false
		}
		failed[what] = true
		return true
	}
	h.slack.SetHook(func(method string, form url.Values) (int, any, bool) {
		text := form.Get("text")
		switch {
		case method == "chat.update" && form.Get("channel") == channelOps && strings.Contains(text, "(succeeded)") && failOnce("card"),
			method == "chat.postMessage" && form.Get("thread_ts") != "" && strings.Contains(text, "Done") && failOnce("reply"),
			method == "chat.update" && form.Get("channel") == channelAudit && failOnce("audit"):
			return http.StatusServiceUnavailable, "upstream unavailable", true
		}
		return 0, nil, false
	})
	h.startWith()

	card := h.pendingCard()
	s := h.approveAndSettle(card)
	if len(s.outcomes) != 1 || !strings.Contains(s.reply(), "Done") {
		t.Errorf("thread outcome replies = %q, want one saying Done", texts(s.outcomes))
	}
	if len(s.records) != 1 || !strings.Contains(s.records[0].Text, "Risk reset succeeded") {
		t.Errorf("audit records = %q, want one saying the reset succeeded", texts(s.records))
	}
	final := h.waitCard(card, "Risk score reset")
	if hasButtons(final) || strings.Contains(blockText(t, final), "resetting") {
		t.Errorf("the card does not show the outcome: %s", blockText(t, final))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 3 {
		t.Errorf("faults played: %v, want the card, the reply and the audit record", failed)
	}
}

func hasFailedCall(calls []slackfake.Call, slackError string) bool {
	for _, c := range calls {
		if c.Error == slackError {
			return true
		}
	}
	return false
}

// TestFaultSlackUsersInfoFailsForMention: a mention whose users.info
// lookup fails gets a clear ephemeral, and nothing is left pending.
func TestFaultSlackUsersInfoFailsForMention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ slackError, want string }{
		{"fatal_error", "try again"},
		{"user_not_found", "could not find that Slack user"},
	} {
		t.Run(tc.slackError, func(t *testing.T) {
			t.Parallel()
			h := faultHarness{newHarness(t)}
			h.failUsersInfo("U0ALICE", tc.slackError)
			h.startWith()

			h.command(analyst, channelOps, "<@U0ALICE> travel")
			p := h.ephemeral(analyst, tc.want)
			if !strings.Contains(p.Text, "Nothing was changed") {
				t.Errorf("ephemeral does not say nothing was changed: %q", p.Text)
			}
			h.assertNoCard()
			if traffic := h.cloudflareTraffic(); strings.Contains(traffic, "access/users") || strings.Contains(traffic, "zt_risk_scoring") {
				t.Errorf("Cloudflare was asked about a target Slack never resolved:\n%s", traffic)
			}

			h.slack.SetHook(nil)
			h.command(analyst, channelOps, "<@U0ALICE> travel")
			h.threadReply(h.card(channelOps, aliceID), "Requested by")
		})
	}
}

// TestFaultSocketDisconnectFrames: after each kind of disconnect frame the
// bot opens a new connection and keeps serving. slack-go reconnects on any
// disconnect frame without telling the bot its reason, so link_disabled is
// acted on only if reconnecting is refused (next test).
func TestFaultSocketDisconnectFrames(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"refresh_requested", "warning", "link_disabled"} {
		t.Run(reason, func(t *testing.T) {
			t.Parallel()
			h := startFaults(t)
			if err := h.slack.SendDisconnect(h.ctx, reason); err != nil {
				t.Fatal(err)
			}
			if err := h.slack.WaitHellos(h.ctx, 2); err != nil {
				t.Fatalf("the bot did not reconnect after %s: %v\nlogs:\n%s", reason, err, h.logs.String())
			}
			if err := h.logs.waitLog(h.ctx, 2, connectedLogs); err != nil {
				t.Fatal(err)
			}
			card := h.pendingCard()
			h.assertVisible(h.approveAndSettle(card), true)
		})
	}
}

// TestFaultSocketLinkDisabledAndRefused: Slack disables the app's Socket
// Mode link and refuses the reconnection; the bot stops with the reason
// instead of retrying forever.
func TestFaultSocketLinkDisabledAndRefused(t *testing.T) {
	t.Parallel()
	h := startFaults(t)
	h.slack.FailNext("apps.connections.open", "link_disabled")
	if err := h.slack.SendDisconnect(h.ctx, "link_disabled"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.done:
		if err == nil || !strings.Contains(err.Error(), "link_disabled") {
			t.Errorf("run returned %v, want an error naming link_disabled", err)
		}
	case <-h.ctx.Done():
		t.Fatalf("run kept going after link_disabled:\n%s", h.logs.String())
	}
	h.stop()
	h.stop = nil // run has returned; nothing is left to shut down
	if n := len(h.logs.logLines(map[string]string{"level": "error", "slack_error": "link_disabled"})); n == 0 {
		t.Errorf("no error line names link_disabled:\n%s", h.logs.String())
	}
}

// TestFaultSocketDropsWithCommandInFlight drops the socket right after a
// command is sent, so its ack may be lost, and Slack redelivers it on the
// new connection: exactly one card comes out.
func TestFaultSocketDropsWithCommandInFlight(t *testing.T) {
	t.Parallel()
	h := startFaults(t)
	id, err := h.slack.SendSlashCommand(h.ctx, slackfake.SlashCommand{UserID: analyst, ChannelID: channelOps, Text: aliceEmail + " travel"})
	if err != nil {
		t.Fatal(err)
	}
	h.slack.DropConnections()
	if err := h.slack.WaitHellos(h.ctx, 2); err != nil {
		t.Fatalf("the bot did not reconnect: %v\nlogs:\n%s", err, h.logs.String())
	}
	conns := h.slack.ConnectionIDs()
	if len(conns) != 1 {
		t.Fatalf("live connections after the drop: %v, want one", conns)
	}
	if err := h.slack.Redeliver(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	card := h.card(channelOps, aliceID)
	h.threadReply(card, "Requested by")

	// Acks go out in order on the one connection: once the sentinel is
	// acked and its card is out, the redelivery has been dealt with.
	h.command(analyst, channelOps, bobEmail+" sentinel")
	h.threadReply(h.card(channelOps, bobID), "Requested by")
	// The first delivery's ack, if queued before the drop, may go out on
	// the new connection too; Slack ignores it.
	if n := h.acksOn(id, conns[0]); n == 0 {
		t.Errorf("the redelivered command was not acked on the new connection")
	}
	if got := len(h.cards(channelOps, aliceID)); got != 1 {
		t.Errorf("%d cards for Alice, want 1", got)
	}
	if got := h.answersTo("", ""); len(got) != 0 {
		t.Errorf("the redelivery was answered: %q", got)
	}
	h.assertVisible(h.approveAndSettle(card), true)
	if n := h.cf.Resets(aliceID); n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
}

// TestFaultSocketMalformedFrames sends frames slack-go cannot decode: the
// ones that carry an envelope id are acked (so Slack stops redelivering
// them), the rest are dropped, and the bot keeps serving.
func TestFaultSocketMalformedFrames(t *testing.T) {
	t.Parallel()
	h := startFaults(t)
	withID := []string{
		`{"envelope_id":%q,"type":"slash_commands","payload":[1,2,3],"accepts_response_payload":true}`,
		`{"envelope_id":%q,"type":"interactive","payload":"garbage"}`,
		`{"envelope_id":%q,"type":"no_such_type","payload":{}}`,
		`{"envelope_id":%q}`,
	}
	var ids []string
	for _, frame := range withID {
		id := uuid.NewString()
		if err := h.slack.SendEnvelope(h.ctx, fmt.Appendf(nil, frame, id)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, frame := range []string{
		`this is not JSON`,
		`{"type":"slash_commands","payload":{"text":42}}`,
		`[1,2,3]`,
		`{"envelope_id":123,"type":"slash_commands"}`,
		`{"envelope_id":"truncated","type":"slash_comm`,
		``,
	} {
		if err := h.slack.SendEnvelope(h.ctx, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if _, err := h.slack.WaitAck(h.ctx, id); err != nil {
			t.Errorf("malformed envelope %s not acked: %v", id, err)
		}
	}

	card := h.pendingCard()
	for _, id := range ids {
		if n := h.slack.AckCount(id); n != 1 {
			t.Errorf("envelope %s acked %d times, want 1", id, n)
		}
	}
	if frames := h.slack.UnknownFrames(); len(frames) != 0 {
		t.Errorf("the bot sent frames that are not acks: %q", frames)
	}
	if got := len(h.allCards()); got != 1 {
		t.Errorf("%d cards, want only the one requested", got)
	}
	h.assertVisible(h.approveAndSettle(card), true)
}
