package slackfake

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestChannelRateLimitAnswers429PerChannel(t *testing.T) {
	ctx := testContext(t)
	fake := New(t, WithChannelRateLimit(time.Minute))
	fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})
	fake.AddChannel(Channel{ID: "C0002", BotIsMember: true})
	api := newAPI(fake)

	_, ts, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("first", false))
	if err != nil {
		t.Fatalf("first post: %v", err)
	}
	_, _, err = api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("second", false), slack.MsgOptionTS(ts))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
		t.Errorf("second post (a thread reply) in the same channel: %v, want RateLimitedError with RetryAfter 1m", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0002", slack.MsgOptionText("elsewhere", false)); err != nil {
		t.Errorf("post to another channel: %v", err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0001", ts, slack.MsgOptionText("edited", false)); err != nil {
		t.Errorf("chat.update is not limited: %v", err)
	}
	if got := len(fake.Messages("C0001")); got != 1 {
		t.Errorf("C0001 has %d messages, want 1: the rate-limited post must not be stored", got)
	}
	calls := fake.Calls("chat.postMessage")
	if len(calls) != 3 || calls[1].Status != http.StatusTooManyRequests || calls[1].Error != "ratelimited" {
		t.Errorf("calls = %+v", calls)
	}
}

func TestChannelRateLimitRetryAfterIsWholeSecondsRoundedUp(t *testing.T) {
	for _, tt := range []struct {
		every time.Duration
		want  string
	}{
		{100 * time.Millisecond, "1"},
		{time.Second, "1"},
		{2500 * time.Millisecond, "3"},
	} {
		fake := New(t, WithChannelRateLimit(tt.every))
		fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})
		form := url.Values{"token": {fake.BotToken()}, "channel": {"C0001"}, "text": {"x"}}
		if status, _ := postRaw(t, fake, "chat.postMessage", form, nil); status != http.StatusOK {
			t.Fatalf("first post: HTTP %d", status)
		}
		status, header, body := postRawHeader(t, fake, form)
		// A 100ms interval may have passed already on a slow machine.
		if status == http.StatusOK && tt.every < time.Second {
			continue
		}
		if status != http.StatusTooManyRequests || header.Get("Retry-After") != tt.want || body["error"] != "ratelimited" {
			t.Errorf("every %v: HTTP %d, Retry-After %q, body %v; want 429, %s, ratelimited", tt.every, status, header.Get("Retry-After"), body, tt.want)
		}
	}
}

func TestChannelRateLimitCountsOnlyStoredMessages(t *testing.T) {
	ctx := testContext(t)
	fake := New(t, WithChannelRateLimit(time.Minute))
	fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})
	fake.AddChannel(Channel{ID: "C0OUT", BotIsMember: false})
	api := newAPI(fake)

	if _, _, err := api.PostMessageContext(ctx, "C0OUT", slack.MsgOptionText("x", false)); slackErrorCode(err) != "not_in_channel" {
		t.Fatalf("post where the bot is not a member: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("", false)); slackErrorCode(err) != "no_text" {
		t.Fatalf("empty post: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("first stored post after refused ones: %v", err)
	}
}

func TestChannelRateLimitIsWaitedOutBySlackGoRetries(t *testing.T) {
	ctx := testContext(t)
	fake := New(t, WithChannelRateLimit(time.Second))
	fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()),
		slack.OptionRetryConfig(slack.RetryConfig{MaxRetries: 3}))

	for _, text := range []string{"one", "two"} {
		if _, _, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText(text, false)); err != nil {
			t.Fatalf("post %q: %v", text, err)
		}
	}
	msgs := fake.Messages("C0001")
	if len(msgs) != 2 {
		t.Fatalf("messages = %+v, want both", msgs)
	}
	calls := fake.Calls("chat.postMessage")
	var stored []time.Time
	for _, c := range calls {
		if c.Status == http.StatusOK {
			stored = append(stored, c.At)
		}
	}
	if len(calls) < 3 || len(stored) != 2 || stored[1].Sub(stored[0]) < time.Second {
		t.Errorf("calls = %+v; want a 429 and two posts at least a second apart", calls)
	}
}

// postRawHeader posts form to chat.postMessage and returns the status,
// headers and body.
func postRawHeader(t *testing.T, fake *Server, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(fake.APIURL()+"chat.postMessage", form)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return resp.StatusCode, resp.Header, body
}
