package main

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"risk-reset-bot/internal/slackfake"
)

// cardUpdateWaitsMsg is the bot's debug line for a card update that lines
// up behind another update of the same card.
const cardUpdateWaitsMsg = "card update waits for the one in flight"

// heldCall holds the first call to one Web API method at the fake Slack
// until it is let go, as a slow answer or a 429 that slack-go waits out
// and resends would.
type heldCall struct {
	arrived chan struct{} // closed when the held call reached the fake
	release chan struct{}
	once    sync.Once
	// overlapping counts calls to the method that reached the fake while
	// the held one was still held.
	overlapping atomic.Int32
}

// holdFirst installs the fake Slack's hook so that the next call to method
// waits until let is called (or the test ends).
func (h *harness) holdFirst(method string) *heldCall {
	c := &heldCall{arrived: make(chan struct{}), release: make(chan struct{})}
	var taken atomic.Bool
	h.slack.SetHook(func(m string, _ url.Values) (int, any, bool) {
		if m != method {
			return 0, nil, false
		}
		if !taken.CompareAndSwap(false, true) {
			select {
			case <-c.release:
			default:
				c.overlapping.Add(1)
			}
			return 0, nil, false
		}
		close(c.arrived)
		select {
		case <-c.release:
		case <-h.ctx.Done():
		}
		return 0, nil, false
	})
	// Registered after the bot started, so it runs before the bot is
	// stopped: a held call never keeps a replica from exiting.
	h.t.Cleanup(c.let)
	return c
}

func (c *heldCall) let() { c.once.Do(func() { close(c.release) }) }

// firstOf waits until one of waits returns nil, and stops the others.
func (h *harness) firstOf(waits ...func(context.Context) error) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	ok := make(chan struct{}, len(waits))
	for _, w := range waits {
		go func() {
			if w(ctx) == nil {
				ok <- struct{}{}
			}
		}()
	}
	select {
	case <-ok:
	case <-h.ctx.Done():
		h.t.Fatalf("none of the awaited events happened\nlogs:\n%s", h.logs.String())
	}
}

// assertFinalCard checks that card shows the reset's outcome and no
// buttons, after every replica has stopped (so no update is still coming).
func (h approvalsHarness) assertFinalCard(card slackfake.Message) {
	h.t.Helper()
	now := h.latest(card)
	text := blockText(h.t, now)
	if !strings.Contains(text, "Risk score reset") || hasButtons(now) || strings.Contains(text, "(1 of 2)") {
		h.t.Errorf("the request succeeded, but its card ends as (buttons: %v):\n%s", hasButtons(now), text)
	}
}

// TestApprovalsLateCardUpdateKeepsOutcome: with two approvals required, the
// first approval's card update is slow (held at Slack, as a 429 waited out
// would be) while the second approval completes the reset. The slow update
// must not land last with the pending card: card updates go one at a time
// per card, each drawn from the store when it is sent.
func TestApprovalsLateCardUpdateKeepsOutcome(t *testing.T) {
	h := startApprovals(t, withEnv("REQUIRED_APPROVALS", "2"))
	card := h.openCard(analyst, aliceEmail, "travel false positive", aliceID)

	held := h.holdFirst("chat.update")
	h.click(lead, card, approveButton)
	h.await(held.arrived, "the call to hold never came")
	h.click(lead2, card, approveButton)
	// Let the held update go once the second approval has either drawn
	// the outcome on the card (updates overtaking each other) or lined up
	// behind the held update (updates in turn).
	h.firstOf(
		func(ctx context.Context) error {
			_, err := h.slack.WaitMessage(ctx, func(m slackfake.Message) bool {
				return m.TS == card.TS && strings.Contains(blockText(t, m), "Risk score reset")
			})
			return err
		},
		func(ctx context.Context) error {
			return h.logs.waitLog(ctx, 1, map[string]string{"message": cardUpdateWaitsMsg})
		},
	)
	if n := held.overlapping.Load(); n != 0 {
		t.Errorf("%d updates of the card went out while an earlier one was in flight, want 0 (one at a time)", n)
	}
	held.let()
	h.threadReply(card, "Done")
	h.threadReply(card, "Approved by <@"+lead+"> (1 of 2)")
	h.shutdown()

	h.assertFinalCard(card)
	h.assertResets(aliceID, 1)
}

// TestReplicasLateCardUpdateKeepsOutcome: as above, but the second approval
// lands on another replica, which nothing in this one can make wait. The
// replica whose update was late reads the request back after sending and
// redraws the card from what the store says.
func TestReplicasLateCardUpdateKeepsOutcome(t *testing.T) {
	h := approvalsHarness{newHarness(t, withRedis(t), withEnv("REQUIRED_APPROVALS", "2"))}
	a, b := h.startReplica(), h.startReplica()
	card := h.requestVia(a, analyst, aliceEmail, aliceID)
	h.threadReply(card, "Requested by")

	held := h.holdFirst("chat.update")
	h.clickVia(a, lead, card, approveButton)
	h.await(held.arrived, "the call to hold never came")
	h.clickVia(b, lead2, card, approveButton)
	h.waitCard(card, "Risk score reset")
	h.threadReply(card, "Done")
	held.let()
	h.threadReply(card, "Approved by <@"+lead+"> (1 of 2)")
	a.shutdown()
	b.shutdown()

	h.assertFinalCard(card)
	h.assertResets(aliceID, 1)
}
