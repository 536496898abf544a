package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// burstSize is how many requests arrive at once in the burst test.
const burstSize = 200

// burstTarget is one user of the burst and the channel their request is
// typed in.
type burstTarget struct {
	userID, email, channel string
}

func burstTargets(n int) []burstTarget {
	out := make([]burstTarget, n)
	for i := range out {
		out[i] = burstTarget{
			userID:  fmt.Sprintf("b0000000-0000-4000-8000-%012d", i),
			email:   fmt.Sprintf("burst%03d@example.com", i),
			channel: fmt.Sprintf("CBURST%03d", i),
		}
	}
	return out
}

// threadPosts collects the channels the bot posts thread replies in, as
// the fake sees them, and wakes one waiter per batch.
type threadPosts struct {
	mu       sync.Mutex
	channels []string
	wake     chan struct{}
}

func newThreadPosts() *threadPosts { return &threadPosts{wake: make(chan struct{}, 1)} }

// hook is a slackfake.Hook that records and lets every call through.
func (p *threadPosts) hook(method string, form url.Values) (int, any, bool) {
	if method == "chat.postMessage" && form.Get("thread_ts") != "" {
		p.mu.Lock()
		p.channels = append(p.channels, form.Get("channel"))
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return 0, nil, false
}

func (p *threadPosts) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.channels
	p.channels = nil
	return out
}

// TestBurst200Commands sends 200 `/risk-reset` commands at once, each in
// its own channel, against a Slack that allows one message per second per
// channel, as real Slack does. The lead approves each card as it appears.
// Every request must end with one reset, one "Done" reply in its thread and
// one audit record; every envelope must be acked within Slack's 3 s; and
// no goroutine may outlive the bot. The audit channel takes one record per
// second, so the test runs for minutes.
func TestBurst200Commands(t *testing.T) {
	if testing.Short() {
		t.Skip("the burst runs for minutes (the audit channel takes one message per second)")
	}
	// Registered first, so it runs after the bot and the fakes are closed.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		goleak.VerifyNone(t, ignore)
	})

	h := newHarness(t, withSlackOptions(slackfake.WithChannelRateLimit(time.Second)), withEnv("LOG_LEVEL", "info"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	h.ctx = ctx
	targets := burstTargets(burstSize)
	for _, tg := range targets {
		h.cf.AddUser(cfapitest.FakeUser{ID: tg.userID, Email: tg.email, Name: "Burst " + tg.email, RiskLevel: "high"})
		h.slack.AddChannel(slackfake.Channel{ID: tg.channel, Name: strings.ToLower(tg.channel), BotIsMember: true})
	}
	posts := newThreadPosts()
	h.slack.SetHook(posts.hook)
	h.start()

	began := time.Now()
	commandIDs := h.sendBurst(targets)
	cards, clickIDs := h.approveCardsAsTheyAppear(posts, targets)
	outcomes := h.awaitOutcomes(cards)
	elapsed := time.Since(began)

	h.assertOneResetEach(targets)
	h.assertOneDoneReplyEach(cards)
	h.assertOneAuditRecordEach(outcomes)
	maxAck := h.assertAckedWithin(append(commandIDs, clickIDs...), 3*time.Second)
	posted, limited := h.postMessageAnswers()
	t.Logf("burst of %d requests: %v from the first command to the last outcome; slowest ack %v; %d chat.postMessage posted, %d answered 429",
		burstSize, elapsed.Round(time.Millisecond), maxAck.Round(time.Microsecond), posted, limited)
	// Slack may throttle an app that keeps hitting its limit: the bot posts
	// to a channel one message at a time, so at most the head of each
	// channel's line meets a 429, about once per message.
	if limited > posted {
		t.Errorf("%d chat.postMessage answered 429 for %d posted; the bot is hammering rate-limited channels", limited, posted)
	}
	h.shutdown()
}

// sendBurst sends one command per target, all at once, and returns their
// envelope ids.
func (h *harness) sendBurst(targets []burstTarget) []string {
	h.t.Helper()
	ids := make([]string, len(targets))
	errs := make([]error, len(targets))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Go(func() {
			<-start
			ids[i], errs[i] = h.slack.SendSlashCommand(h.ctx, slackfake.SlashCommand{UserID: analyst, ChannelID: tg.channel, Text: tg.email})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			h.t.Fatalf("sending command %d: %v", i, err)
		}
	}
	return ids
}

// approveCardsAsTheyAppear clicks approve on each card as soon as the bot
// has posted it (its "Requested by" reply shows the card is there), and
// returns the cards by channel and the clicks' envelope ids.
func (h *harness) approveCardsAsTheyAppear(posts *threadPosts, targets []burstTarget) (map[string]slackfake.Message, []string) {
	h.t.Helper()
	cards := map[string]slackfake.Message{}
	var clickIDs []string
	for len(cards) < len(targets) {
		select {
		case <-posts.wake:
		case <-h.ctx.Done():
			h.t.Fatalf("only %d of %d cards appeared: %v\nlogs:\n%s", len(cards), len(targets), h.ctx.Err(), h.logs.String())
		}
		for _, ch := range posts.take() {
			if _, done := cards[ch]; done {
				continue
			}
			card, ok := cardIn(h.slack.Messages(ch))
			if !ok {
				continue
			}
			id, err := h.slack.SendBlockAction(h.ctx, slackfake.BlockAction{UserID: lead, ChannelID: ch, MessageTS: card.TS, ActionID: "risk_reset_approve", Value: cardRequestID(h.t, card)})
			if err != nil {
				h.t.Fatalf("clicking approve in %s: %v", ch, err)
			}
			cards[ch] = card
			clickIDs = append(clickIDs, id)
		}
	}
	return cards, clickIDs
}

// cardIn finds the confirmation card among a channel's messages.
func cardIn(msgs []slackfake.Message) (slackfake.Message, bool) {
	for _, m := range msgs {
		if m.ThreadTS == "" && strings.Contains(string(m.Blocks), "risk_reset_approve") {
			return m, true
		}
	}
	return slackfake.Message{}, false
}

// awaitOutcomes waits for the outcome reply in every card's thread and
// returns it by request id; a failure is reported, not waited past.
func (h *harness) awaitOutcomes(cards map[string]slackfake.Message) map[string]string {
	h.t.Helper()
	outcomes := map[string]string{}
	for _, card := range cards {
		m, err := h.slack.WaitMessage(h.ctx, func(m slackfake.Message) bool {
			return m.Channel == card.Channel && m.ThreadTS == card.TS && (strings.Contains(m.Text, "Done") || strings.Contains(m.Text, "reset failed"))
		})
		if err != nil {
			h.t.Fatalf("no outcome in the thread of the card in %s: %v\nlogs:\n%s", card.Channel, err, h.logs.String())
		}
		outcomes[cardRequestID(h.t, card)] = m.Text
	}
	return outcomes
}

func (h *harness) assertOneResetEach(targets []burstTarget) {
	h.t.Helper()
	total := 0
	for _, tg := range targets {
		n := h.cf.Resets(tg.userID)
		total += n
		if n != 1 {
			h.t.Errorf("%s was reset %d times, want 1", tg.email, n)
		}
	}
	if total != len(targets) {
		h.t.Errorf("%d resets in all, want %d", total, len(targets))
	}
}

func (h *harness) assertOneDoneReplyEach(cards map[string]slackfake.Message) {
	h.t.Helper()
	for ch, card := range cards {
		var done []string
		for _, m := range h.slack.Messages(ch) {
			if m.ThreadTS == card.TS && strings.Contains(m.Text, "Done") {
				done = append(done, m.Text)
			}
		}
		if len(done) != 1 {
			h.t.Errorf("thread of the card in %s has %d \"Done\" replies, want 1: %q", ch, len(done), done)
		}
	}
}

// assertOneAuditRecordEach checks the audit channel holds exactly one
// record per request, showing it succeeded. A successful reset's record
// is written before the reset and completed after it, so it is waited for.
func (h *harness) assertOneAuditRecordEach(outcomes map[string]string) {
	h.t.Helper()
	for id, text := range outcomes {
		if !strings.Contains(text, "Done") {
			h.t.Errorf("request %s ended with %q, want Done", id, text)
			continue
		}
		h.auditRecord("*Risk reset succeeded* · request `" + id + "`")
	}
	records := h.slack.Messages(channelAudit)
	if len(records) != len(outcomes) {
		h.t.Errorf("the audit channel has %d records, want %d", len(records), len(outcomes))
	}
	for id := range outcomes {
		n := 0
		for _, m := range records {
			if strings.Contains(m.Text, "`"+id+"`") {
				n++
			}
		}
		if n != 1 {
			h.t.Errorf("request %s has %d audit records, want 1", id, n)
		}
	}
}

// assertAckedWithin checks every envelope was acked once, within limit of
// being sent, and returns the slowest ack.
func (h *harness) assertAckedWithin(envelopeIDs []string, limit time.Duration) time.Duration {
	h.t.Helper()
	var latencies []time.Duration
	for _, id := range envelopeIDs {
		ack, err := h.slack.WaitAck(h.ctx, id)
		if err != nil {
			h.t.Errorf("envelope %s: %v", id, err)
			continue
		}
		if n := h.slack.AckCount(id); n != 1 {
			h.t.Errorf("envelope %s acked %d times, want 1", id, n)
		}
		latencies = append(latencies, ack.At.Sub(ack.SentAt))
	}
	if len(latencies) == 0 {
		return 0
	}
	slowest := slices.Max(latencies)
	if slowest > limit {
		over := 0
		for _, l := range latencies {
			if l > limit {
				over++
			}
		}
		h.t.Errorf("%d of %d envelopes acked later than %v (slowest %v)", over, len(latencies), limit, slowest)
	}
	return slowest
}

// postMessageAnswers counts chat.postMessage calls the fake took and
// those it answered with 429.
func (h *harness) postMessageAnswers() (posted, limited int) {
	for _, c := range h.slack.Calls("chat.postMessage") {
		switch {
		case c.Status == http.StatusTooManyRequests:
			limited++
		case c.Status == http.StatusOK && c.Error == "":
			posted++
		}
	}
	return posted, limited
}
