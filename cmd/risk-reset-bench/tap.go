package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// socketTap sits on the Socket Mode connection between the bot and the
// Slack fake and timestamps frames where the bot's socket is: when an
// envelope has been written to the bot and when its ack has been read
// back. The fake's own timestamps are taken under its lock and while it
// builds payloads, which under load measures the fake as much as the bot.
// The tap can also hold envelopes and release them back to back, so the
// bot sees a true burst however slowly the fake produces them.
type socketTap struct {
	srv      *httptest.Server
	apiURL   string // the fake's Web API
	appToken string

	mu     sync.Mutex
	sent   map[string]time.Time // envelope id: written to the bot
	acked  map[string]time.Time // envelope id: ack read from the bot
	holdN  int                  // envelopes to hold before releasing them together
	held   [][]byte
	heldID []string
	wake   chan struct{} // closed and replaced on every send and ack
}

func newSocketTap(apiURL, appToken string) *socketTap {
	t := &socketTap{apiURL: apiURL, appToken: appToken, sent: map[string]time.Time{}, acked: map[string]time.Time{}, wake: make(chan struct{})}
	t.srv = httptest.NewServer(http.HandlerFunc(t.serveLink))
	return t
}

func (t *socketTap) close() { t.srv.Close() }

// hook answers apps.connections.open with the tap's URL in front of the
// fake's. It is consulted for the tap's own call too, which it lets
// through.
func (t *socketTap) hook(method string, form url.Values) (int, any, bool) {
	if method != "apps.connections.open" || form.Get("via_tap") != "" {
		return 0, nil, false
	}
	real, err := t.openAtFake()
	if err != nil {
		return http.StatusOK, map[string]any{"ok": false, "error": "fatal_error", "detail": err.Error()}, true
	}
	link := "ws" + strings.TrimPrefix(t.srv.URL, "http") + "/link?to=" + url.QueryEscape(real)
	return http.StatusOK, map[string]any{"ok": true, "url": link}, true
}

func (t *socketTap) openAtFake() (string, error) {
	req, err := http.NewRequest(http.MethodPost, t.apiURL+"apps.connections.open", strings.NewReader("via_tap=1"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+t.appToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("apps.connections.open at the fake: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		OK    bool   `json:"ok"`
		URL   string `json:"url"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || !body.OK {
		return "", fmt.Errorf("apps.connections.open at the fake: %v %s", err, body.Error)
	}
	return body.URL, nil
}

var tapUpgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveLink accepts the bot's websocket and joins it to the fake's.
func (t *socketTap) serveLink(w http.ResponseWriter, r *http.Request) {
	fake, resp, err := websocket.DefaultDialer.Dial(r.URL.Query().Get("to"), nil)
	if err != nil {
		http.Error(w, "tap: dialing the fake: "+err.Error(), http.StatusBadGateway)
		return
	}
	_ = resp.Body.Close()
	bot, err := tapUpgrader.Upgrade(w, r, nil)
	if err != nil {
		_ = fake.Close()
		return
	}
	fake.SetPingHandler(func(data string) error {
		return bot.WriteControl(websocket.PingMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	done := make(chan struct{}, 2)
	go func() { t.pumpToBot(fake, bot); done <- struct{}{} }()
	go func() { t.pumpToFake(bot, fake); done <- struct{}{} }()
	<-done
	_ = fake.Close()
	_ = bot.Close()
	<-done
}

// pumpToBot forwards the fake's frames, holding envelopes when asked.
func (t *socketTap) pumpToBot(fake, bot *websocket.Conn) {
	for {
		typ, frame, err := fake.ReadMessage()
		if err != nil {
			return
		}
		id := envelopeID(frame)
		if id == "" {
			if bot.WriteMessage(typ, frame) != nil {
				return
			}
			continue
		}
		if batch, ids := t.queue(id, frame); batch != nil && !t.release(bot, batch, ids) {
			return
		}
	}
}

// queue adds an envelope to the held batch and returns the batch when it
// is complete (or at once when nothing is held).
func (t *socketTap) queue(id string, frame []byte) ([][]byte, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.held, t.heldID = append(t.held, frame), append(t.heldID, id)
	if len(t.held) < t.holdN {
		return nil, nil
	}
	batch, ids := t.held, t.heldID
	t.held, t.heldID, t.holdN = nil, nil, 0
	return batch, ids
}

// release writes frames to the bot back to back and notes when each write
// began: the bot can read, and ack, a frame before WriteMessage returns, so
// a time taken after the write could come after the ack.
func (t *socketTap) release(bot *websocket.Conn, frames [][]byte, ids []string) bool {
	at := make([]time.Time, len(frames))
	for i, f := range frames {
		at[i] = time.Now()
		if bot.WriteMessage(websocket.TextMessage, f) != nil {
			return false
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, id := range ids {
		t.sent[id] = at[i]
	}
	t.notifyLocked()
	return true
}

// pumpToFake forwards the bot's frames and notes when each ack arrived.
func (t *socketTap) pumpToFake(bot, fake *websocket.Conn) {
	for {
		typ, frame, err := bot.ReadMessage()
		if err != nil {
			return
		}
		at := time.Now()
		if id := envelopeID(frame); id != "" {
			t.mu.Lock()
			if _, seen := t.acked[id]; !seen {
				t.acked[id] = at
			}
			t.notifyLocked()
			t.mu.Unlock()
		}
		if fake.WriteMessage(typ, frame) != nil {
			return
		}
	}
}

// notifyLocked wakes the waiters in timings.
func (t *socketTap) notifyLocked() {
	close(t.wake)
	t.wake = make(chan struct{})
}

func envelopeID(frame []byte) string {
	var probe struct {
		EnvelopeID string `json:"envelope_id"`
	}
	_ = json.Unmarshal(frame, &probe)
	return probe.EnvelopeID
}

// holdNext makes the tap hold the next n envelopes and release them to the
// bot together.
func (t *socketTap) holdNext(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.holdN = n
}

// timing is an envelope's trip through the bot, at the bot's socket.
type timing struct{ sent, acked time.Time }

func (x timing) latency() time.Duration { return x.acked.Sub(x.sent) }

// timings waits until every envelope has been acked and returns when each
// was written to the bot and acked.
func (t *socketTap) timings(ctx context.Context, ids []string) ([]timing, error) {
	out := make([]timing, 0, len(ids))
	for _, id := range ids {
		for {
			t.mu.Lock()
			sent, okSent := t.sent[id]
			acked, okAcked := t.acked[id]
			wake := t.wake
			t.mu.Unlock()
			if okSent && okAcked {
				out = append(out, timing{sent: sent, acked: acked})
				break
			}
			select {
			case <-wake:
			case <-ctx.Done():
				return nil, errors.Join(fmt.Errorf("envelope %s not acked through the tap", id), ctx.Err())
			}
		}
	}
	return out, nil
}
