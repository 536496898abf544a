package main

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"risk-reset-bot/cloudflare"
	"risk-reset-bot/internal/slackfake"
)

// faultHarness adds the fault matrix's helpers to the shared harness. They
// are methods of this type rather than of harness so that helpers other
// test files add to harness cannot collide with them.
type faultHarness struct{ *harness }

// startFaults builds a harness and starts the bot, with extra Cloudflare
// client options applied after the harness's own (so they win).
func startFaults(t *testing.T, cfOpts ...cloudflare.Option) faultHarness {
	t.Helper()
	h := faultHarness{newHarness(t)}
	h.startWith(cfOpts...)
	return h
}

// startWith starts the bot with extra Cloudflare client options: some
// faults need a short HTTP timeout, retry budget or a transport of their
// own.
func (h faultHarness) startWith(cfOpts ...cloudflare.Option) {
	h.t.Helper()
	// Applied after the harness's own Cloudflare options, so these win.
	h.runOptions = append(h.runOptions, withCloudflareOptions(cfOpts...))
	h.start()
}

// settled is how a request ended, as people see it.
type settled struct {
	requestID string
	card      slackfake.Message   // the card as it is now
	outcomes  []slackfake.Message // thread replies other than "Requested by"
	records   []slackfake.Message // audit records about the request
}

// approveAndSettle approves card and waits until the request's audit
// record shows a terminal state, the last thing the bot writes about an
// outcome; then it collects what the card, thread and audit channel show.
// Waiting on the state rather than on wording keeps a test that expects
// other words failing fast instead of at the harness deadline.
func (h faultHarness) approveAndSettle(card slackfake.Message) settled {
	h.t.Helper()
	requestID := cardRequestID(h.t, card)
	h.click(lead, card, approveButton)
	_, err := h.slack.WaitMessage(h.ctx, func(m slackfake.Message) bool {
		return m.Channel == channelAudit && strings.Contains(m.Text, requestID) &&
			(strings.Contains(m.Text, "Risk reset succeeded") || strings.Contains(m.Text, "Risk reset failed"))
	})
	if err != nil {
		h.t.Fatalf("request %s never reached a terminal audit record: %v\nlogs:\n%s", requestID, err, h.logs.String())
	}
	s := settled{requestID: requestID, card: h.current(card)}
	for _, m := range h.slack.Messages(card.Channel) {
		if m.ThreadTS == card.TS && !strings.Contains(m.Text, "Requested by") {
			s.outcomes = append(s.outcomes, m)
		}
	}
	for _, m := range h.slack.Messages(channelAudit) {
		if strings.Contains(m.Text, requestID) {
			s.records = append(s.records, m)
		}
	}
	return s
}

// reply is the single outcome reply, or "" when there is not exactly one.
func (s settled) reply() string {
	if len(s.outcomes) != 1 {
		return ""
	}
	return s.outcomes[0].Text
}

// assertVisible checks that nothing was lost: the card has no buttons and
// shows the outcome, the thread has exactly one outcome reply, and the
// audit channel exactly one record, all agreeing on success or failure.
func (h faultHarness) assertVisible(s settled, succeeded bool) {
	h.t.Helper()
	cardWant, replyWant, recordWant := "Risk score reset", "Done", "Risk reset succeeded"
	if !succeeded {
		cardWant, replyWant, recordWant = "Reset failed", "the reset failed", "Risk reset failed"
	}
	if hasButtons(s.card) {
		h.t.Errorf("the card still has buttons: %s", blockText(h.t, s.card))
	}
	if text := blockText(h.t, s.card); !strings.Contains(text, cardWant) {
		h.t.Errorf("card does not show %q: %s", cardWant, text)
	}
	if len(s.outcomes) != 1 {
		h.t.Errorf("%d outcome replies in the thread, want 1: %q", len(s.outcomes), texts(s.outcomes))
	} else if !strings.Contains(s.reply(), replyWant) {
		h.t.Errorf("thread reply %q does not say %q", s.reply(), replyWant)
	}
	if len(s.records) != 1 {
		h.t.Errorf("%d audit records about the request, want 1: %q", len(s.records), texts(s.records))
	} else if !strings.Contains(s.records[0].Text, recordWant) {
		h.t.Errorf("audit record %q does not say %q", s.records[0].Text, recordWant)
	}
	for _, text := range append(texts(s.outcomes), blockText(h.t, s.card)) {
		for _, raw := range []string{`{"`, `"success"`, "<html", "<!DOCTYPE", "<title>"} {
			if strings.Contains(text, raw) {
				h.t.Errorf("a raw Cloudflare answer (%s) reached Slack: %q", raw, text)
			}
		}
	}
	if got := h.answersTo("", ""); len(got) != 0 {
		h.t.Errorf("ephemerals were sent for a request whose outcome belongs in its thread: %q", got)
	}
}

func texts(msgs []slackfake.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Text
	}
	return out
}

// containsAny reports whether s contains one of the phrases, ignoring case.
func containsAny(s string, phrases ...string) bool {
	s = strings.ToLower(s)
	for _, p := range phrases {
		if strings.Contains(s, strings.ToLower(p)) {
			return true
		}
	}
	return false
}

// saysNothingChanged reports whether a failure tells the reader that the
// reset is known not to have happened.
func saysNothingChanged(s string) bool {
	return containsAny(s, "nothing was changed", "not applied", "was not reset")
}

// saysOutcomeUnknown reports whether a failure tells the reader that
// nobody knows whether the reset happened.
func saysOutcomeUnknown(s string) bool {
	return containsAny(s, "unknown", "could not be confirmed", "not confirmed", "may or may not", "check the user's risk")
}

// failUsersInfo makes users.info answer ok:false with slackError for user.
func (h faultHarness) failUsersInfo(user, slackError string) {
	h.slack.SetHook(func(method string, form url.Values) (int, any, bool) {
		if method == "users.info" && form.Get("user") == user {
			return http.StatusOK, map[string]any{"ok": false, "error": slackError}, true
		}
		return 0, nil, false
	})
}

// refusedResets is an HTTP client whose reset requests go to a port
// nothing listens on, so they are refused before anything is sent, while
// every other request reaches the fake Cloudflare.
func refusedResets(t *testing.T) *http.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	closed := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("closing the probe listener: %v", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Timeout: 5 * time.Second, Transport: redirectResets{to: closed, next: transport}}
}

type redirectResets struct {
	to   string
	next http.RoundTripper
}

func (r redirectResets) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/reset") {
		req = req.Clone(req.Context())
		req.URL.Host = r.to
		req.Host = ""
	}
	return r.next.RoundTrip(req)
}

// acksOn counts the acks of envelopeID that arrived on connection connID.
func (h faultHarness) acksOn(envelopeID string, connID int) int {
	n := 0
	for _, a := range h.slack.Acks() {
		if a.EnvelopeID == envelopeID && a.ConnID == connID {
			n++
		}
	}
	return n
}
