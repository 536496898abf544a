package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"risk-reset-bot/internal/benchwatch"
	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// Identities of the bench workspace and account.
const (
	accountID    = "0123456789abcdef0123456789abcdef"
	cfToken      = "cf-token-bench-0000000000000000000000000"
	analyst      = "U0001" // the requester
	lead         = "U0002" // the approver
	leadsGroup   = "S0LEADS"
	auditChannel = "C0AUDIT"
	// calibrationChannel takes the bench's own messages when it times
	// the fakes.
	calibrationChannel = "C0CALIBRATE"
)

// target is a Cloudflare user to reset and the channel the request for it
// is typed in; one channel per request keeps Slack's per-channel limit out
// of the way (the bench sets none anyway).
type target struct{ userID, email, channel string }

// rig holds the fakes the bot runs against: a Slack (Web API and Socket
// Mode) and a Cloudflare account, both answering at once, with nothing
// validated or slowed down.
type rig struct {
	ctx     context.Context
	slack   *slackfake.Server
	cfURL   string
	calls   *benchwatch.Calls
	resets  *benchwatch.Resets
	tap     *socketTap
	targets []target
	used    int
}

func newRig(ctx context.Context, tb *benchTB, users int) *rig {
	r := &rig{ctx: ctx, slack: slackfake.New(tb), calls: benchwatch.NewCalls()}
	cf := cfapitest.NewFakeAccount(accountID)
	cf.SetToken(cfapitest.FakeToken{Value: cfToken, ID: "tok1", Status: "active", Owner: cfapitest.AccountToken})
	r.resets = benchwatch.NewResets(cf)
	srv := httptest.NewServer(r.resets)
	tb.Cleanup(srv.Close)
	r.cfURL = srv.URL + cfapitest.BasePath

	r.slack.AddUser(slackfake.User{ID: analyst, Name: "analyst", Email: "analyst@example.com"})
	r.slack.AddUser(slackfake.User{ID: lead, Name: "lead", Email: "lead@example.com"})
	r.slack.SetGroupMembers(leadsGroup, lead)
	r.slack.AddChannel(slackfake.Channel{ID: auditChannel, Name: "soc-audit", BotIsMember: true})
	r.slack.AddChannel(slackfake.Channel{ID: calibrationChannel, Name: "calibration", BotIsMember: true})
	for i := range users {
		tg := target{
			userID:  fmt.Sprintf("b0000000-0000-4000-8000-%012d", i),
			email:   fmt.Sprintf("bench%05d@example.com", i),
			channel: fmt.Sprintf("CBENCH%05d", i),
		}
		cf.AddUser(cfapitest.FakeUser{ID: tg.userID, Email: tg.email, Name: "Bench " + tg.email, RiskLevel: "high"})
		r.slack.AddChannel(slackfake.Channel{ID: tg.channel, Name: strings.ToLower(tg.channel), BotIsMember: true})
		r.targets = append(r.targets, tg)
	}
	r.tap = newSocketTap(r.slack.APIURL(), r.slack.AppToken())
	tb.Cleanup(r.tap.close)
	r.slack.SetHook(func(method string, form url.Values) (int, any, bool) {
		if status, body, handled := r.tap.hook(method, form); handled {
			return status, body, true
		}
		return r.calls.Hook(method, form)
	})
	return r
}

// environ is the bot's configuration against the fakes.
func (r *rig) environ() []string {
	return []string{
		"SLACK_BOT_TOKEN=" + r.slack.BotToken(), "SLACK_APP_TOKEN=" + r.slack.AppToken(), "SLACK_API_URL=" + r.slack.APIURL(),
		"CLOUDFLARE_ACCOUNT_ID=" + accountID, "CLOUDFLARE_API_TOKEN=" + cfToken, "CLOUDFLARE_API_URL=" + r.cfURL,
		"REQUESTER_IDS=" + analyst, "APPROVER_IDS=" + leadsGroup, "AUDIT_CHANNEL_ID=" + auditChannel,
		"REQUIRE_REASON=false", "LOG_LEVEL=info", "LOG_FORMAT=json", "HTTP_ADDR=127.0.0.1:0",
	}
}

// take hands out n targets no request has used yet.
func (r *rig) take(n int) []target {
	if r.used+n > len(r.targets) {
		panic(fmt.Sprintf("rig has %d users, %d more asked for", len(r.targets)-r.used, n))
	}
	out := r.targets[r.used : r.used+n]
	r.used += n
	return out
}

// waves splits targets into consecutive batches of at most size.
func waves(targets []target, size int) [][]target {
	var out [][]target
	for lo := 0; lo < len(targets); lo += size {
		out = append(out, targets[lo:min(lo+size, len(targets))])
	}
	return out
}

// isRequestedReply matches the "Requested by" reply under a new card, the
// command handler's last call.
func isRequestedReply(e benchwatch.Call) bool {
	return e.Method == "chat.postMessage" && e.ThreadTS != "" && strings.HasPrefix(e.Text, "Requested by")
}

// isAuditCompletion matches completing the audit record, a request's last
// call.
func isAuditCompletion(e benchwatch.Call) bool {
	return e.Method == "chat.update" && e.Channel == auditChannel
}

// commandWave sends /risk-reset for every target at once, waits until each
// card is posted, and returns the envelopes' timings.
func (r *rig) commandWave(targets []target) ([]timing, error) {
	mark := r.calls.Mark()
	r.tap.holdNext(len(targets))
	ids, err := sendAll(targets, func(tg target) (string, error) {
		return r.slack.SendSlashCommand(r.ctx, slackfake.SlashCommand{UserID: analyst, ChannelID: tg.channel, Text: tg.email})
	})
	if err != nil {
		return nil, err
	}
	acks, err := r.tap.timings(r.ctx, ids)
	if err != nil {
		return nil, err
	}
	if _, err := r.calls.Wait(r.ctx, mark, len(targets), isRequestedReply); err != nil {
		return nil, fmt.Errorf("cards: %w", err)
	}
	return acks, nil
}

// approveWave clicks approve on every target's card at once, waits until
// every request has finished, and returns the envelopes' timings.
func (r *rig) approveWave(targets []target) ([]timing, error) {
	mark := r.calls.Mark()
	r.tap.holdNext(len(targets))
	ids, err := sendAll(targets, r.approve)
	if err != nil {
		return nil, err
	}
	acks, err := r.tap.timings(r.ctx, ids)
	if err != nil {
		return nil, err
	}
	if _, err := r.calls.Wait(r.ctx, mark, len(targets), isAuditCompletion); err != nil {
		return nil, fmt.Errorf("outcomes: %w", err)
	}
	return acks, nil
}

// approve clicks the approve button on tg's card.
func (r *rig) approve(tg target) (string, error) {
	card, ok := r.card(tg.channel)
	if !ok {
		return "", fmt.Errorf("no card in %s", tg.channel)
	}
	return r.slack.SendBlockAction(r.ctx, slackfake.BlockAction{UserID: lead, ChannelID: tg.channel, MessageTS: card.TS, ActionID: "risk_reset_approve"})
}

// card returns the confirmation card posted in channel.
func (r *rig) card(channel string) (slackfake.Message, bool) {
	for _, m := range r.slack.Messages(channel) {
		if m.ThreadTS == "" && strings.Contains(string(m.Blocks), "risk_reset_approve") {
			return m, true
		}
	}
	return slackfake.Message{}, false
}

// helpWave sends `/risk-reset help` in every target's channel at once. The
// bot answers it in the ack and starts no handler, so this times the ack
// path alone.
func (r *rig) helpWave(targets []target) ([]timing, error) {
	r.tap.holdNext(len(targets))
	ids, err := sendAll(targets, func(tg target) (string, error) {
		return r.slack.SendSlashCommand(r.ctx, slackfake.SlashCommand{UserID: analyst, ChannelID: tg.channel, Text: "help"})
	})
	if err != nil {
		return nil, err
	}
	return r.tap.timings(r.ctx, ids)
}

// flow is the timeline of one approval, from the fake's clock.
type flow struct {
	click                                       timing // when the click reached the bot, and its ack
	resetReceived, resetAnswered, replyReceived time.Time
}

// approveOneByOne approves the targets' cards one at a time and returns
// each approval's timeline.
func (r *rig) approveOneByOne(targets []target) ([]flow, error) {
	out := make([]flow, 0, len(targets))
	for _, tg := range targets {
		mark := r.calls.Mark()
		acks, err := r.approveWave([]target{tg})
		if err != nil {
			return nil, err
		}
		reset, err := r.resets.Get(r.ctx, tg.userID)
		if err != nil {
			return nil, err
		}
		reply, _, err := r.calls.Next(r.ctx, mark, func(e benchwatch.Call) bool {
			return e.Method == "chat.postMessage" && e.Channel == tg.channel && strings.Contains(e.Text, "Done")
		})
		if err != nil {
			return nil, fmt.Errorf("outcome reply: %w", err)
		}
		out = append(out, flow{click: acks[0], resetReceived: reset.Received, resetAnswered: reset.Answered, replyReceived: reply.At})
	}
	return out, nil
}

// burst sends a command for every target at once, approves each card as
// soon as it is posted, and returns when every request has finished.
func (r *rig) burst(targets []target) error {
	mark := r.calls.Mark()
	sent := make(chan error, 1)
	go func() {
		_, err := sendAll(targets, func(tg target) (string, error) {
			return r.slack.SendSlashCommand(r.ctx, slackfake.SlashCommand{UserID: analyst, ChannelID: tg.channel, Text: tg.email})
		})
		sent <- err
	}()
	byChannel := map[string]target{}
	for _, tg := range targets {
		byChannel[tg.channel] = tg
	}
	for next, approved := mark, 0; approved < len(targets); approved++ {
		e, after, err := r.calls.Next(r.ctx, next, isRequestedReply)
		if err != nil {
			return fmt.Errorf("burst cards (%d approved): %w", approved, err)
		}
		if _, err := r.approve(byChannel[e.Channel]); err != nil {
			return err
		}
		next = after
	}
	if err := <-sent; err != nil {
		return err
	}
	if _, err := r.calls.Wait(r.ctx, mark, len(targets), isAuditCompletion); err != nil {
		return fmt.Errorf("burst outcomes: %w", err)
	}
	return nil
}

// sendAll sends one envelope per target, all at once.
func sendAll(targets []target, send func(target) (string, error)) ([]string, error) {
	ids := make([]string, len(targets))
	errs := make([]error, len(targets))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Go(func() {
			<-start
			ids[i], errs[i] = send(tg)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}
