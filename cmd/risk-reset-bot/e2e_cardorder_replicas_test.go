package main

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"risk-reset-bot/cloudflare"
	"risk-reset-bot/internal/slackfake"
)

// gatedResets holds every reset POST to Cloudflare until open is closed,
// and says on arrived when one came.
type gatedResets struct {
	arrived chan struct{}
	open    chan struct{}
	next    http.RoundTripper
}

func (g *gatedResets) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/reset") {
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		select {
		case <-g.open:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return g.next.RoundTrip(req)
}

// gate holds the n-th chat.update that match accepts until release is
// closed, and closes arrived when it came.
type gate struct {
	match   func(url.Values) bool
	n       int32
	seen    atomic.Int32
	arrived chan struct{}
	release chan struct{}
}

func newGate(n int32, match func(url.Values) bool) *gate {
	return &gate{match: match, n: n, arrived: make(chan struct{}), release: make(chan struct{})}
}

// TestReplicasLateCardDrawsEndOnTheOutcome: REQUIRED_APPROVALS=3 on two
// replicas sharing Redis. Each of replica A's card updates is held at Slack
// while the request moves on under it (another approval, then the reset on
// replica B), so each time A lands it finds a newer state and draws again.
// However many times that happens, A's last draw must be the outcome B
// drew, not "resetting…" over a finished card.
func TestReplicasLateCardDrawsEndOnTheOutcome(t *testing.T) {
	const lead3 = "U0004"
	h := approvalsHarness{newHarness(t, withRedis(t), withEnv("REQUIRED_APPROVALS", "3"))}
	h.slack.AddUser(slackfake.User{ID: lead3, Name: "lead3", Email: "lead3@example.com"})
	h.slack.SetGroupMembers(leadsGroup, lead, lead2, lead3)
	cfGate := &gatedResets{arrived: make(chan struct{}, 1), open: make(chan struct{}), next: http.DefaultTransport}
	h.runOptions = append(h.runOptions, withCloudflareOptions(cloudflare.WithHTTPClient(&http.Client{Transport: cfGate, Timeout: 20 * time.Second})))

	blocksHave := func(s string) func(url.Values) bool {
		return func(f url.Values) bool { return strings.Contains(f.Get("blocks"), s) }
	}
	g1 := newGate(1, blocksHave("(1 of 3)"))
	g2 := newGate(2, blocksHave("(2 of 3)"))
	g3 := newGate(2, func(f url.Values) bool { return strings.Contains(f.Get("text"), "(executing)") })
	gates := []*gate{g1, g2, g3}
	h.slack.SetHook(func(method string, form url.Values) (int, any, bool) {
		if method != "chat.update" || form.Get("channel") != channelOps {
			return 0, nil, false
		}
		for _, g := range gates {
			if g.match(form) && g.seen.Add(1) == g.n {
				close(g.arrived)
				select {
				case <-g.release:
				case <-h.ctx.Done():
				}
			}
		}
		return 0, nil, false
	})
	t.Cleanup(func() {
		for _, g := range gates {
			select {
			case <-g.release:
			default:
				close(g.release)
			}
		}
		select {
		case <-cfGate.open:
		default:
			close(cfGate.open)
		}
	})

	a, b := h.startReplica(), h.startReplica()
	card := h.requestVia(a, analyst, aliceEmail, aliceID)
	h.threadReply(card, "Requested by")

	h.clickVia(a, lead, card, approveButton) // A draws pending 1/3: held
	h.await(g1.arrived, "A's first draw never arrived")
	h.clickVia(b, lead2, card, approveButton) // B draws pending 2/3
	h.waitCard(card, "(2 of 3)")
	close(g1.release) // A lands 1/3, re-reads 2/3, draws it: held
	h.await(g2.arrived, "A's second draw never arrived")
	h.clickVia(b, lead3, card, approveButton) // B: executing, reset held at Cloudflare
	h.await(cfGate.arrived, "reset never sent")
	close(g2.release) // A lands 2/3, re-reads executing, draws it: held
	h.await(g3.arrived, "A's third draw never arrived")
	close(cfGate.open) // B finishes and draws the outcome
	h.threadReply(card, "Done")
	h.waitCard(card, "Risk score reset")
	close(g3.release) // A's executing draw lands last
	h.threadReply(card, "Approved by <@"+lead+"> (1 of 3)")
	a.shutdown()
	b.shutdown()

	final := h.latest(card)
	if text := blockText(t, final); strings.Contains(text, "resetting") || hasButtons(final) {
		t.Errorf("the reset succeeded (resets=%d) but the card ends as:\n%s", h.cf.Resets(aliceID), text)
	}
}
