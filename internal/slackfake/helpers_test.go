package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// testContext bounds every wait in a test; nothing waits by sleeping.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newAPI(fake *Server) *slack.Client {
	return slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken(fake.AppToken()))
}

// socketClient runs slack-go's socketmode client against the fake.
type socketClient struct {
	client *socketmode.Client
	events chan socketmode.Event
	runErr chan error
}

func startSocketClient(t *testing.T, api *slack.Client, opts ...socketmode.Option) *socketClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sc := &socketClient{
		client: socketmode.New(api, opts...),
		events: make(chan socketmode.Event, 100),
		runErr: make(chan error, 1),
	}
	var wg sync.WaitGroup
	wg.Go(func() { sc.runErr <- sc.client.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sc.client.Events:
				select {
				case sc.events <- evt:
				case <-ctx.Done():
					return
				}
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return sc
}

// next returns the next event of type want, skipping others.
func (sc *socketClient) next(ctx context.Context, t *testing.T, want socketmode.EventType) socketmode.Event {
	t.Helper()
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("no %s event: %v", want, ctx.Err())
		case evt := <-sc.events:
			if evt.Type == want {
				return evt
			}
		}
	}
}

func slackErrorCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

func slackErrorMessages(err error) []string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.ResponseMetadata.Messages
	}
	return nil
}

// postRaw calls a Web API method with a hand-built form, for requests
// slack-go would never build.
func postRaw(t *testing.T, fake *Server, method string, form url.Values, header http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fake.APIURL()+method, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", method, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode %s answer: %v", method, err)
	}
	return resp.StatusCode, body
}

// dialLink opens a raw websocket the way slack-go does, for tests that
// need to see frames byte for byte.
func dialLink(ctx context.Context, t *testing.T, fake *Server) *websocket.Conn {
	t.Helper()
	_, wsURL, err := newAPI(fake).StartSocketModeContext(ctx)
	if err != nil {
		t.Fatalf("apps.connections.open: %v", err)
	}
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = conn.Close() })
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(deadline)
	}
	return conn
}

func readJSONFrame(t *testing.T, conn *websocket.Conn) map[string]any {
	t.Helper()
	_, data, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	var frame map[string]any
	if err := json.Unmarshal(data, &frame); err != nil {
		t.Fatalf("frame %q is not JSON: %v", data, err)
	}
	return frame
}

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func cardBlocks(requestID string) slack.MsgOption {
	return slack.MsgOptionBlocks(
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "Reset *alice@example.com*?", false, false), nil, nil, slack.SectionBlockOptionBlockID("rr_summary")),
		slack.NewActionBlock("rr_actions",
			slack.NewButtonBlockElement("risk_reset_approve", requestID, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)).WithStyle(slack.StyleDanger),
			slack.NewButtonBlockElement("risk_reset_reject", requestID, slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false)),
		),
	)
}
