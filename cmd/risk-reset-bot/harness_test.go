package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"risk-reset-bot/cloudflare"
	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// Identities used across the end-to-end tests.
const (
	accountID    = "0123456789abcdef0123456789abcdef"
	cfToken      = "cf-token-SECRET-e2e-0000000000000000000000"
	channelOps   = "C0001"
	channelOther = "C0002"
	channelAudit = "C0AUDIT"
	analyst      = "U0001" // a requester
	lead         = "U0002" // an approver
	lead2        = "U0003" // a second approver
	stranger     = "U0009" // neither
	leadsGroup   = "S0LEADS"
	aliceID      = "f2108713-1206-4e84-8b80-0e71a6a1c67b"
	aliceEmail   = "alice@example.com"
	bobID        = "0b7f6a52-2a4b-4c1e-9d0a-6c1f5e2d3a4b"
	bobEmail     = "bob@example.com"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log output from the bot's goroutines and lets a
// test wait for a line.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

// waitLog waits until n log lines with all of want's fields exist.
func (b *syncBuffer) waitLog(ctx context.Context, n int, want map[string]string) error {
	for {
		b.mu.Lock()
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		if len(b.logLines(want)) >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d log lines with %v: %w", n, want, ctx.Err())
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines returns the JSON log lines whose fields include all of want.
func (b *syncBuffer) logLines(want map[string]string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		ok := true
		for k, v := range want {
			if s, _ := m[k].(string); s != v {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// harness runs the bot through run, as main does, against a fake Slack and
// a fake Cloudflare account.
type harness struct {
	t     *testing.T
	ctx   context.Context
	slack *slackfake.Server
	cf    *cfapitest.FakeAccount
	cfSrv *cfapitest.Server
	clock *fakeClock
	logs  *syncBuffer
	env   map[string]string
	stop  context.CancelFunc
	done  chan error
	addr  chan string // the health and metrics server's address

	runOptions []option // extra wiring for every replica
}

type harnessOption func(*harness)

// withEnv sets (or, with an empty value, removes) an environment variable.
func withEnv(k, v string) harnessOption { return func(h *harness) { h.env[k] = v } }

// withSlackOptions rebuilds the fake Slack with options (a clock, a ping
// interval) and points the bot at it.
func withSlackOptions(opts ...slackfake.Option) harnessOption {
	return func(h *harness) {
		h.slack = slackfake.New(h.t, opts...)
		h.env["SLACK_BOT_TOKEN"] = h.slack.BotToken()
		h.env["SLACK_APP_TOKEN"] = h.slack.AppToken()
		h.env["SLACK_API_URL"] = h.slack.APIURL()
		h.seed()
	}
}

// withRunOptions adds wiring options to every replica the harness starts.
func withRunOptions(opts ...option) harnessOption {
	return func(h *harness) { h.runOptions = append(h.runOptions, opts...) }
}

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	h := &harness{
		t: t, ctx: ctx,
		slack: slackfake.New(t),
		cf:    cfapitest.NewFakeAccount(accountID),
		clock: &fakeClock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)},
		logs:  &syncBuffer{},
	}
	h.cf.SetToken(cfapitest.FakeToken{Value: cfToken, ID: "tok1", Status: "active", Owner: cfapitest.AccountToken})
	h.cfSrv = cfapitest.NewServer(t, h.cf)
	h.env = map[string]string{
		"SLACK_BOT_TOKEN":       h.slack.BotToken(),
		"SLACK_APP_TOKEN":       h.slack.AppToken(),
		"SLACK_API_URL":         h.slack.APIURL(),
		"CLOUDFLARE_ACCOUNT_ID": accountID,
		"CLOUDFLARE_API_TOKEN":  cfToken,
		"CLOUDFLARE_API_URL":    h.cfSrv.URL,
		"REQUESTER_IDS":         analyst + "," + lead,
		"APPROVER_IDS":          leadsGroup,
		"AUDIT_CHANNEL_ID":      channelAudit,
		"REQUEST_TTL":           "30m",
		"LOG_LEVEL":             "debug",
		"HTTP_ADDR":             "127.0.0.1:0",
		// Most tests give the target alone; the reason-modal tests turn
		// the requirement back on.
		"REQUIRE_REASON": "false",
	}
	h.seed()
	for _, o := range opts {
		o(h)
	}
	return h
}

// seed fills the fakes with the people, channels and Cloudflare users most
// tests need.
func (h *harness) seed() {
	for _, u := range []slackfake.User{
		{ID: analyst, Name: "analyst", Email: "analyst@example.com"},
		{ID: lead, Name: "lead", Email: "lead@example.com"},
		{ID: lead2, Name: "lead2", Email: "lead2@example.com"},
		{ID: stranger, Name: "stranger", Email: "stranger@example.com"},
		{ID: "U0ALICE", Name: "alice", Email: aliceEmail},
	} {
		h.slack.AddUser(u)
	}
	h.slack.SetGroupMembers(leadsGroup, lead, lead2)
	h.slack.AddChannel(slackfake.Channel{ID: channelOps, Name: "soc-ops", BotIsMember: true})
	h.slack.AddChannel(slackfake.Channel{ID: channelOther, Name: "random", BotIsMember: false})
	h.slack.AddChannel(slackfake.Channel{ID: channelAudit, Name: "soc-audit", BotIsMember: true})
	h.cf.AddUser(cfapitest.FakeUser{ID: aliceID, Email: aliceEmail, Name: "Alice Example", RiskLevel: "high",
		Events: []cfapitest.FakeEvent{{ID: "e1", Name: "impossible travel", RiskLevel: "high", Timestamp: h.clock.Now().Add(-time.Hour)}}})
	h.cf.AddUser(cfapitest.FakeUser{ID: bobID, Email: bobEmail, Name: "Bob Example", RiskLevel: "medium"})
}

// replica is one running bot, as one process of a deployment would be.
type replica struct {
	h      *harness
	stop   context.CancelFunc
	done   chan error
	addr   chan string // the health and metrics server's address
	connID int         // its Socket Mode connection at the fake Slack
}

// start runs the bot and waits until it is connected to the fake Slack.
func (h *harness) start() {
	h.t.Helper()
	r := h.startReplica()
	h.stop, h.done, h.addr = r.stop, r.done, r.addr
	h.stop = func() { r.stop(); r.stop = nil }
}

// startReplica runs one more bot against the same fakes and environment,
// and waits for its Socket Mode connection.
func (h *harness) startReplica(extra ...option) *replica {
	h.t.Helper()
	var environ []string
	for k, v := range h.env {
		if v != "" {
			environ = append(environ, k+"="+v)
		}
	}
	before, hellos := h.slack.ConnectionIDs(), h.slack.Hellos()
	runCtx, stop := context.WithCancel(context.Background())
	r := &replica{h: h, stop: stop, done: make(chan error, 1), addr: make(chan string, 1)}
	opts := append([]option{
		withListening(func(a string) { r.addr <- a }),
		withClock(h.clock.Now),
		withSweepInterval(10 * time.Millisecond),
		withCloudflareOptions(cloudflare.WithBackoff(time.Millisecond, 5*time.Millisecond), cloudflare.WithRetryBudget(2*time.Second), cloudflare.WithSettleWindow(200*time.Millisecond)),
	}, h.runOptions...)
	opts = append(opts, extra...)
	go func() { r.done <- run(runCtx, nil, environ, h.logs, opts...) }()
	h.t.Cleanup(r.shutdown)
	if err := h.slack.WaitHellos(h.ctx, hellos+1); err != nil {
		h.t.Fatalf("bot did not connect to Socket Mode: %v\nlogs:\n%s", err, h.logs.String())
	}
	for _, id := range h.slack.ConnectionIDs() {
		if !slices.Contains(before, id) {
			r.connID = id
		}
	}
	return r
}

// shutdown stops the first replica (see start) and checks it exits cleanly.
func (h *harness) shutdown() {
	if h.stop == nil {
		return
	}
	h.stop()
	h.stop = nil
	h.awaitExit(h.done)
}

// shutdown stops this replica and checks it exits cleanly.
func (r *replica) shutdown() {
	if r.stop == nil {
		return
	}
	r.stop()
	r.stop = nil
	r.h.awaitExit(r.done)
}

func (h *harness) awaitExit(done chan error) {
	select {
	case err := <-done:
		if err != nil {
			h.t.Errorf("run returned %v", err)
		}
		done <- err // later waiters see it too
	case <-time.After(10 * time.Second):
		h.t.Errorf("run did not return after cancel")
	}
	if strings.Contains(h.logs.String(), cfToken) || strings.Contains(h.logs.String(), h.slack.BotToken()) || strings.Contains(h.logs.String(), h.slack.AppToken()) {
		h.t.Errorf("a secret appeared in the logs")
	}
}

// httpGet fetches a path from the bot's health and metrics server.
func (h *harness) httpGet(path string) (int, string) {
	h.t.Helper()
	var addr string
	select {
	case addr = <-h.addr:
		h.addr <- addr
	case <-h.ctx.Done():
		h.t.Fatal("the health server never started")
	}
	req, _ := http.NewRequestWithContext(h.ctx, http.MethodGet, "http://"+addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// command sends `/risk-reset text` from user in channel and waits for its ack.
func (h *harness) command(user, channel, text string) (envelopeID string, ack slackfake.Ack) {
	h.t.Helper()
	id, err := h.slack.SendSlashCommand(h.ctx, slackfake.SlashCommand{UserID: user, ChannelID: channel, Text: text})
	if err != nil {
		h.t.Fatalf("sending slash command: %v", err)
	}
	ack, err = h.slack.WaitAck(h.ctx, id)
	if err != nil {
		h.t.Fatalf("slash command not acked: %v", err)
	}
	return id, ack
}

// click presses a card button and waits for the ack.
func (h *harness) click(user string, card slackfake.Message, actionID string) string {
	h.t.Helper()
	requestID := cardRequestID(h.t, card)
	id, err := h.slack.SendBlockAction(h.ctx, slackfake.BlockAction{UserID: user, ChannelID: card.Channel, MessageTS: card.TS, ActionID: actionID, Value: requestID})
	if err != nil {
		h.t.Fatalf("sending click: %v", err)
	}
	if _, err := h.slack.WaitAck(h.ctx, id); err != nil {
		h.t.Fatalf("click not acked: %v", err)
	}
	return id
}

// card waits for the confirmation card (a top-level message with buttons)
// about target in channel.
func (h *harness) card(channel, target string) slackfake.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx, func(m slackfake.Message) bool {
		return m.Channel == channel && m.ThreadTS == "" && strings.Contains(string(m.Blocks), "risk_reset_approve") && strings.Contains(blockText(h.t, m), target)
	})
	if err != nil {
		h.t.Fatalf("no card for %s in %s: %v\nlogs:\n%s", target, channel, err, h.logs.String())
	}
	return m
}

// waitCard waits until the card with ts shows text.
func (h *harness) waitCard(card slackfake.Message, text string) slackfake.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx, func(m slackfake.Message) bool {
		return m.Channel == card.Channel && m.TS == card.TS && strings.Contains(blockText(h.t, m), text)
	})
	if err != nil {
		h.t.Fatalf("card never showed %q: %v\nlogs:\n%s", text, err, h.logs.String())
	}
	return m
}

// threadReply waits for a reply in the card's thread containing text.
func (h *harness) threadReply(card slackfake.Message, text string) slackfake.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx, func(m slackfake.Message) bool {
		return m.Channel == card.Channel && m.ThreadTS == card.TS && strings.Contains(m.Text, text)
	})
	if err != nil {
		h.t.Fatalf("no thread reply with %q: %v\nlogs:\n%s", text, err, h.logs.String())
	}
	return m
}

// auditRecord waits for an audit channel record containing text.
func (h *harness) auditRecord(text string) slackfake.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx, func(m slackfake.Message) bool {
		return m.Channel == channelAudit && strings.Contains(m.Text, text)
	})
	if err != nil {
		h.t.Fatalf("no audit record with %q: %v\nlogs:\n%s", text, err, h.logs.String())
	}
	return m
}

// ephemeral waits for an ephemeral answer to user containing text.
func (h *harness) ephemeral(user, text string) slackfake.ResponsePost {
	h.t.Helper()
	p, err := h.slack.WaitResponsePost(h.ctx, func(p slackfake.ResponsePost) bool {
		return p.UserID == user && p.Ephemeral && strings.Contains(p.Text, text)
	})
	if err != nil {
		h.t.Fatalf("no ephemeral to %s with %q: %v\nephemerals: %+v\nlogs:\n%s", user, text, err, h.slack.ResponseURLPosts(), h.logs.String())
	}
	return p
}

// cardRequestID reads the request id from the approve button's value.
func cardRequestID(t *testing.T, card slackfake.Message) string {
	t.Helper()
	var blocks []struct {
		Type     string `json:"type"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(card.Blocks, &blocks); err != nil {
		t.Fatalf("card blocks: %v", err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID == "risk_reset_approve" {
				return e.Value
			}
		}
	}
	t.Fatalf("card has no approve button: %s", card.Blocks)
	return ""
}

// blockText returns every text in a message's blocks, decoded, so tests
// match what a person reads.
func blockText(t *testing.T, m slackfake.Message) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(m.Blocks, &v); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	var sb strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "text" || k == "action_id" || k == "value") {
					sb.WriteString(s + "\n")
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return sb.String()
}
