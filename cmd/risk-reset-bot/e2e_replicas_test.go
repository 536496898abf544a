package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// withRedis keeps requests in the Redis at $REDIS_URL under a key prefix
// of this test's own. Without REDIS_URL the test is skipped, except in CI,
// where .ci/run starts Redis and a missing one is a failure.
func withRedis(t *testing.T) harnessOption {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("REDIS_URL is not set in CI; .ci/run starts Redis and sets it")
		}
		t.Skip("REDIS_URL is not set; run `. .ci/redis.sh` first to include the multi-replica tests")
	}
	return func(h *harness) {
		h.env["REDIS_URL"] = url
		h.runOptions = append(h.runOptions, withRedisPrefix("risk-reset-bot-e2e:"+uuid.NewString()+":"))
	}
}

// cardOn posts a request for target through the given replica's connection
// and returns its card.
func (h *harness) requestVia(r *replica, requester, target, targetID string) slackfake.Message {
	h.t.Helper()
	h.slack.RouteTo(r.connID)
	h.command(requester, channelOps, target+" travel")
	return h.card(channelOps, targetID)
}

// clickVia presses a card button through the given replica's connection.
func (h *harness) clickVia(r *replica, user string, card slackfake.Message, action string) {
	h.t.Helper()
	h.slack.RouteTo(r.connID)
	h.click(user, card, action)
}

func TestReplicasApproveAlternatingExactlyOnceEach(t *testing.T) {
	h := newHarness(t, withRedis(t))
	const n = 50
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
		h.cf.AddUser(cfapitest.FakeUser{ID: ids[i], Email: fmt.Sprintf("user%02d@example.com", i), Name: fmt.Sprintf("User %02d", i), RiskLevel: "high"})
	}
	replicas := []*replica{h.startReplica(), h.startReplica()}

	for i, id := range ids {
		// The command lands on one replica, the click on the other.
		card := h.requestVia(replicas[i%2], analyst, fmt.Sprintf("user%02d@example.com", i), id)
		h.clickVia(replicas[(i+1)%2], lead, card, "risk_reset_approve")
		h.threadReply(card, "Done")
	}
	for _, id := range ids {
		if got := h.cf.Resets(id); got != 1 {
			t.Errorf("user %s reset %d times, want 1", id, got)
		}
	}
	if got := len(h.slack.Messages(channelAudit)); got != n {
		t.Errorf("%d audit records, want %d", got, n)
	}
}

func TestReplicasDoubleClickOnDifferentReplicas(t *testing.T) {
	h := newHarness(t, withRedis(t))
	a, b := h.startReplica(), h.startReplica()
	card := h.requestVia(a, analyst, aliceEmail, aliceID)

	h.clickVia(a, lead, card, "risk_reset_approve")
	h.clickVia(b, lead2, card, "risk_reset_approve")
	h.threadReply(card, "Done")
	// Whichever click lost is told who won.
	if _, err := h.slack.WaitResponsePost(h.ctx, func(p slackfake.ResponsePost) bool {
		return strings.Contains(p.Text, "already approved by")
	}); err != nil {
		t.Fatalf("the losing click was not told: %v", err)
	}
	if got := h.cf.Resets(aliceID); got != 1 {
		t.Errorf("resets = %d, want 1", got)
	}
}

func TestReplicasRedeliveryToAnotherReplicaIsHandledOnce(t *testing.T) {
	h := newHarness(t, withRedis(t))
	a, b := h.startReplica(), h.startReplica()
	h.slack.RouteTo(a.connID)
	id, _ := h.command(analyst, channelOps, aliceEmail+" travel")
	card := h.card(channelOps, aliceID)
	h.slack.RouteTo(b.connID)
	if err := h.slack.Redeliver(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.logs.waitLog(h.ctx, 1, map[string]string{"message": "ignored redelivered envelope"}); err != nil {
		t.Fatal(err)
	}
	// A second card would have been posted before the replica logged.
	if cards := cardsFor(h, aliceID); len(cards) != 1 {
		t.Errorf("%d cards for one redelivered command, want 1", len(cards))
	}
	h.clickVia(b, lead, card, "risk_reset_approve")
	h.threadReply(card, "Done")
}

func TestReplicasRestartBetweenRequestAndApproval(t *testing.T) {
	h := newHarness(t, withRedis(t))
	a := h.startReplica()
	card := h.requestVia(a, analyst, aliceEmail, aliceID)
	a.shutdown()

	b := h.startReplica()
	h.clickVia(b, lead, card, "risk_reset_approve")
	h.waitCard(card, "Risk score reset")
	h.threadReply(card, "Done")
	if got := h.cf.Resets(aliceID); got != 1 {
		t.Errorf("resets = %d, want 1", got)
	}
}

func TestReplicasKilledMidResetIsSettledByAnother(t *testing.T) {
	h := newHarness(t, withRedis(t), withEnv("SHUTDOWN_TIMEOUT", "10ms"))
	h.cf.SetClock(h.clock.Now)
	arrived := make(chan struct{}, 1)
	// Cloudflare applies the reset but its answer never comes back.
	h.cf.Inject(cfapitest.OpResetRisk, cfapitest.Fault{Notify: arrived, ApplyFirst: true, Hang: true})
	a := h.startReplica()
	card := h.requestVia(a, analyst, aliceEmail, aliceID)
	h.clickVia(a, lead, card, "risk_reset_approve")
	h.await(arrived, "the reset never reached Cloudflare")
	a.shutdown() // gives up on the hanging reset after SHUTDOWN_TIMEOUT

	h.clock.Advance(6 * time.Minute) // past the time a reset may take
	h.startReplica()
	h.threadReply(card, "Cloudflare shows the reset in place")
	h.waitCard(card, "Risk score reset")
	if got := h.cf.Resets(aliceID); got != 1 {
		t.Errorf("resets = %d, want 1", got)
	}
	// The record written before the reset is completed, not joined by a
	// second one: the audit channel holds one record per reset.
	h.auditRecord("Cloudflare shows the reset in place")
	id := cardRequestID(t, card)
	var records []string
	for _, m := range h.slack.Messages(channelAudit) {
		if strings.Contains(m.Text, id) {
			records = append(records, m.Text)
		}
	}
	if len(records) != 1 {
		t.Errorf("audit records of the request = %q, want one, completed with the outcome\nlogs:\n%s", records, h.logs.String())
	}
}

// TestReplicasKilledBeforeShowingTheOutcome: a replica records a reset's
// outcome, then dies before the card, the thread and the audit channel
// show it (here: stuck in Slack's answer to the final card update).
// One of the other replicas shows it, once.
func TestReplicasKilledBeforeShowingTheOutcome(t *testing.T) {
	h := newHarness(t, withRedis(t), withEnv("SHUTDOWN_TIMEOUT", "10ms"))
	held, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	var holding atomic.Bool
	h.slack.SetHook(func(method string, form url.Values) (int, any, bool) {
		if method == "chat.update" && strings.Contains(form.Get("text"), "(succeeded)") && holding.CompareAndSwap(false, true) {
			close(held)
			select { // the dying replica never gets its answer
			case <-release:
			case <-h.ctx.Done():
			}
		}
		return 0, nil, false
	})
	a := h.startReplica()
	card := h.requestVia(a, analyst, aliceEmail, aliceID)
	h.clickVia(a, lead, card, "risk_reset_approve")
	h.await(held, "the final card update never came")
	a.shutdown()

	h.clock.Advance(6 * time.Minute)           // past the time showing an outcome may take
	b, c := h.startReplica(), h.startReplica() // both sweeps find it
	h.threadReply(card, "Done")
	h.waitCard(card, "Risk score reset")
	h.auditRecord("Risk reset succeeded")
	b.shutdown() // no later sweep can add a second one
	c.shutdown()
	id := cardRequestID(t, card)
	var records, replies int
	for _, m := range h.slack.Messages(channelAudit) {
		if strings.Contains(m.Text, id) {
			records++
		}
	}
	for _, m := range h.slack.Messages(channelOps) {
		if m.ThreadTS == card.TS && strings.Contains(m.Text, "Done") {
			replies++
		}
	}
	if records != 1 || replies != 1 {
		t.Errorf("%d audit records and %d Done replies, want one each\nlogs:\n%s", records, replies, h.logs.String())
	}
	if got := h.cf.Resets(aliceID); got != 1 {
		t.Errorf("resets = %d, want 1", got)
	}
}

func TestReplicasExpiryIsAnnouncedOnce(t *testing.T) {
	h := newHarness(t, withRedis(t))
	a, b := h.startReplica(), h.startReplica()
	card := h.requestVia(a, analyst, aliceEmail, aliceID)
	h.clock.Advance(31 * time.Minute)
	h.threadReply(card, "Expired")
	// Stop both sweepers, then count: no later sweep can add a second one.
	a.shutdown()
	b.shutdown()
	n := 0
	for _, m := range h.slack.Messages(channelOps) {
		if m.ThreadTS == card.TS && strings.Contains(m.Text, "Expired") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d expiry replies, want 1", n)
	}
	if got := len(h.slack.Messages(channelAudit)); got != 1 {
		t.Errorf("%d audit records, want 1", got)
	}
}

func TestReplicasRedisDownAndBack(t *testing.T) {
	redis := withRedis(t) // skips before the proxy needs $REDIS_URL
	u, err := url.Parse(os.Getenv("REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	h := newHarness(t, redis, func(h *harness) {
		proxied := *u
		proxied.Host = proxy.addr()
		h.env["REDIS_URL"] = proxied.String()
	})
	h.start()
	if err := h.logs.waitLog(h.ctx, 1, connectedLogs); err != nil {
		t.Fatal(err)
	}

	proxy.setDown(true)
	code, body := h.httpGet("/readyz")
	if code != 503 || !strings.Contains(body, "request store unreachable") {
		t.Errorf("/readyz with Redis down = %d %q, want 503 naming the store", code, body)
	}
	h.command(analyst, channelOps, aliceEmail+" travel")
	h.ephemeral(analyst, "temporarily unavailable")
	if got := len(cardsFor(h, aliceID)); got != 0 {
		t.Errorf("%d cards posted while Redis was down", got)
	}

	proxy.setDown(false)
	if code, body := h.httpGet("/readyz"); code != 200 {
		t.Errorf("/readyz with Redis back = %d %q, want 200", code, body)
	}
	h.command(analyst, channelOps, aliceEmail+" travel")
	card := h.card(channelOps, aliceID)
	h.click(lead, card, "risk_reset_approve")
	h.threadReply(card, "Done")
}

func cardsFor(h *harness, targetID string) []slackfake.Message {
	var cards []slackfake.Message
	for _, m := range h.slack.Messages(channelOps) {
		if m.ThreadTS == "" && strings.Contains(string(m.Blocks), targetID) {
			cards = append(cards, m)
		}
	}
	return cards
}

// tcpProxy forwards loopback connections to a server, and can play the
// server being down: it cuts open connections and refuses new ones.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		go p.forward(c)
	}
}

func (p *tcpProxy) forward(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c], p.conns[upstream] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) { _, _ = io.Copy(dst, src); done <- struct{}{} }
	go pipe(upstream, c)
	go pipe(c, upstream)
	<-done
	c.Close()
	upstream.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, upstream)
	p.mu.Unlock()
}
