package main

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"risk-reset-bot/internal/benchwatch"
	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// The benchmarks run the bot as main does, in this process, against the
// fakes with nothing slowed down: no rate limit, no Cloudflare validation
// (it would bill the fake's schema checks to the bot). Every figure is
// taken from timestamps (the fake's send and ack times, the Cloudflare
// fake's receive and answer times, the Slack fake's arrival times), so the
// benchmark's own waiting is not measured. Each wave of work starts with
// the bot idle: the previous wave's requests have finished.
//
//	go test -run '^$' -bench . -benchtime 200x ./cmd/risk-reset-bot/

func BenchmarkAckSlashCommand(b *testing.B) {
	for _, c := range []int{1, 100} {
		b.Run(fmt.Sprintf("concurrent=%d", c), func(b *testing.B) {
			rig := newBenchRig(b, b.N)
			var acks []slackfake.Ack
			for wave := range rig.waves(c) {
				acks = append(acks, rig.commandWave(wave)...)
			}
			reportLatency(b, ackLatencies(acks))
		})
	}
}

func BenchmarkAckClick(b *testing.B) {
	for _, c := range []int{1, 100} {
		b.Run(fmt.Sprintf("concurrent=%d", c), func(b *testing.B) {
			rig := newBenchRig(b, b.N)
			var acks []slackfake.Ack
			for wave := range rig.waves(c) {
				rig.commandWave(wave)
				acks = append(acks, rig.approveWave(wave)...)
			}
			reportLatency(b, ackLatencies(acks))
		})
	}
}

// BenchmarkClickToResetRequest measures from the fake sending the approve
// click to the Cloudflare fake receiving the reset, one request at a time.
// In between the bot re-authorizes the click (users.info), records the
// approval, updates the card and writes the audit record.
func BenchmarkClickToResetRequest(b *testing.B) {
	flows := newBenchRig(b, b.N).requests(b.N)
	reportLatency(b, mapFlows(flows, func(f flowTimes) time.Duration { return f.resetReceived.Sub(f.clickSent) }))
}

// BenchmarkCloudflareResponseToThreadReply measures from the Cloudflare
// fake answering the reset to the Slack fake receiving the "Done" reply.
// In between the bot reads the user back (a second Cloudflare call),
// records the outcome and updates the card.
func BenchmarkCloudflareResponseToThreadReply(b *testing.B) {
	flows := newBenchRig(b, b.N).requests(b.N)
	reportLatency(b, mapFlows(flows, func(f flowTimes) time.Duration { return f.replyReceived.Sub(f.resetAnswered) }))
}

// BenchmarkCommandHandled counts allocations per `/risk-reset` handled end
// to end (ack, lookups, card, "Requested by" reply). The bot shares this
// process with both fakes and the websocket, so allocs/op includes theirs;
// go run ./cmd/risk-reset-bench measures the bot alone.
func BenchmarkCommandHandled(b *testing.B) {
	rig := newBenchRig(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for wave := range rig.waves(1) {
		rig.commandWave(wave)
	}
}

// BenchmarkRequestHandled counts allocations per request carried through:
// command, card, approval, reset, outcome and audit record.
func BenchmarkRequestHandled(b *testing.B) {
	rig := newBenchRig(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	rig.requests(b.N)
}

func ackLatencies(acks []slackfake.Ack) []time.Duration {
	out := make([]time.Duration, len(acks))
	for i, a := range acks {
		out[i] = a.At.Sub(a.SentAt)
	}
	return out
}

// reportLatency reports the mean as ns/op and the 50th and 99th
// percentiles, replacing the wall time of the loop (which includes setup).
func reportLatency(b *testing.B, d []time.Duration) {
	b.Helper()
	if len(d) == 0 {
		b.Fatal("no samples")
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	b.ReportMetric(float64(sum.Nanoseconds())/float64(len(d)), "ns/op")
	b.ReportMetric(float64(percentile(d, 50).Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(percentile(d, 99).Nanoseconds())/1e3, "p99-us")
}

// percentile returns the p-th percentile of d by the nearest-rank method.
func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

type flowTimes struct {
	clickSent, resetReceived, resetAnswered, replyReceived time.Time
}

func mapFlows(flows []flowTimes, f func(flowTimes) time.Duration) []time.Duration {
	out := make([]time.Duration, len(flows))
	for i, fl := range flows {
		out[i] = f(fl)
	}
	return out
}

// benchRig is the bot running against fakes, with n users to reset, each
// requested in a channel of its own.
type benchRig struct {
	b       *testing.B
	ctx     context.Context
	slack   *slackfake.Server
	calls   *benchwatch.Calls
	resets  *benchwatch.Resets
	targets []burstTarget
}

func newBenchRig(b *testing.B, n int) *benchRig {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	r := &benchRig{b: b, ctx: ctx, slack: slackfake.New(b), calls: benchwatch.NewCalls(), targets: burstTargets(n)}
	cf := cfapitest.NewFakeAccount(accountID)
	cf.SetToken(cfapitest.FakeToken{Value: cfToken, ID: "tok1", Status: "active", Owner: cfapitest.AccountToken})
	r.resets = benchwatch.NewResets(cf)
	cfSrv := httptest.NewServer(r.resets)
	b.Cleanup(cfSrv.Close)

	r.slack.AddUser(slackfake.User{ID: analyst, Name: "analyst", Email: "analyst@example.com"})
	r.slack.AddUser(slackfake.User{ID: lead, Name: "lead", Email: "lead@example.com"})
	r.slack.SetGroupMembers(leadsGroup, lead)
	r.slack.AddChannel(slackfake.Channel{ID: channelAudit, Name: "soc-audit", BotIsMember: true})
	for _, tg := range r.targets {
		cf.AddUser(cfapitest.FakeUser{ID: tg.userID, Email: tg.email, Name: "Bench " + tg.email, RiskLevel: "high"})
		r.slack.AddChannel(slackfake.Channel{ID: tg.channel, Name: strings.ToLower(tg.channel), BotIsMember: true})
	}
	r.slack.SetHook(r.calls.Hook)
	r.start(cfSrv.URL + cfapitest.BasePath)
	return r
}

func (r *benchRig) start(cfURL string) {
	environ := []string{
		"SLACK_BOT_TOKEN=" + r.slack.BotToken(), "SLACK_APP_TOKEN=" + r.slack.AppToken(), "SLACK_API_URL=" + r.slack.APIURL(),
		"CLOUDFLARE_ACCOUNT_ID=" + accountID, "CLOUDFLARE_API_TOKEN=" + cfToken, "CLOUDFLARE_API_URL=" + cfURL,
		"REQUESTER_IDS=" + analyst, "APPROVER_IDS=" + leadsGroup, "AUDIT_CHANNEL_ID=" + channelAudit,
		"REQUIRE_REASON=false", "LOG_LEVEL=info", "HTTP_ADDR=127.0.0.1:0",
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(runCtx, nil, environ, io.Discard) }()
	r.b.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			r.b.Errorf("run returned %v", err)
		}
	})
	if err := r.slack.WaitHellos(r.ctx, 1); err != nil {
		r.b.Fatalf("bot did not connect: %v", err)
	}
}

// waves splits the targets into consecutive batches of at most size.
func (r *benchRig) waves(size int) iter.Seq[[]burstTarget] {
	return func(yield func([]burstTarget) bool) {
		for lo := 0; lo < len(r.targets); lo += size {
			if !yield(r.targets[lo:min(lo+size, len(r.targets))]) {
				return
			}
		}
	}
}

// commandWave sends /risk-reset for targets at once, waits for every card,
// and returns the acks.
func (r *benchRig) commandWave(targets []burstTarget) []slackfake.Ack {
	mark := r.calls.Mark()
	ids := r.sendAll(targets, func(tg burstTarget) (string, error) {
		return r.slack.SendSlashCommand(r.ctx, slackfake.SlashCommand{UserID: analyst, ChannelID: tg.channel, Text: tg.email})
	})
	acks := r.acks(ids)
	// The "Requested by" reply is the command handler's last call.
	r.wait(mark, len(targets), func(e benchwatch.Call) bool {
		return e.Method == "chat.postMessage" && e.ThreadTS != "" && strings.HasPrefix(e.Text, "Requested by")
	})
	return acks
}

// approveWave clicks approve on the cards of targets at once, waits until
// every request has finished, and returns the acks.
func (r *benchRig) approveWave(targets []burstTarget) []slackfake.Ack {
	mark := r.calls.Mark()
	ids := r.sendAll(targets, func(tg burstTarget) (string, error) {
		card, ok := cardIn(r.slack.Messages(tg.channel))
		if !ok {
			return "", fmt.Errorf("no card in %s", tg.channel)
		}
		return r.slack.SendBlockAction(r.ctx, slackfake.BlockAction{UserID: lead, ChannelID: tg.channel, MessageTS: card.TS, ActionID: "risk_reset_approve"})
	})
	acks := r.acks(ids)
	// Completing the audit record is a request's last call.
	r.wait(mark, len(targets), func(e benchwatch.Call) bool {
		return e.Method == "chat.update" && e.Channel == channelAudit
	})
	return acks
}

// requests carries n requests through one at a time and returns their
// timestamps.
func (r *benchRig) requests(n int) []flowTimes {
	out := make([]flowTimes, 0, n)
	for _, tg := range r.targets[:n] {
		r.commandWave([]burstTarget{tg})
		mark := r.calls.Mark()
		ack := r.approveWave([]burstTarget{tg})[0]
		reset := r.reset(tg.userID)
		reply := r.wait(mark, 1, func(e benchwatch.Call) bool {
			return e.Method == "chat.postMessage" && e.Channel == tg.channel && strings.Contains(e.Text, "Done")
		})
		out = append(out, flowTimes{clickSent: ack.SentAt, resetReceived: reset.Received, resetAnswered: reset.Answered, replyReceived: reply[0].At})
	}
	return out
}

// sendAll sends one envelope per target, all at once.
func (r *benchRig) sendAll(targets []burstTarget, send func(burstTarget) (string, error)) []string {
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
			r.b.Fatal(err)
		}
	}
	return ids
}

// acks waits for each envelope's ack, one waiter at a time so waiting does
// not hold the fake's lock while acks come in.
func (r *benchRig) acks(ids []string) []slackfake.Ack {
	out := make([]slackfake.Ack, 0, len(ids))
	for _, id := range ids {
		ack, err := r.slack.WaitAck(r.ctx, id)
		if err != nil {
			r.b.Fatal(err)
		}
		out = append(out, ack)
	}
	return out
}

// wait returns the first n Slack calls at or after mark that match.
func (r *benchRig) wait(mark, n int, match func(benchwatch.Call) bool) []benchwatch.Call {
	r.b.Helper()
	calls, err := r.calls.Wait(r.ctx, mark, n, match)
	if err != nil {
		r.b.Fatal(err)
	}
	return calls
}

// reset waits for the reset of user.
func (r *benchRig) reset(user string) benchwatch.ResetTimes {
	r.b.Helper()
	t, err := r.resets.Get(r.ctx, user)
	if err != nil {
		r.b.Fatal(err)
	}
	return t
}
