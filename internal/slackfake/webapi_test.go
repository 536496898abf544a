package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

var tsPattern = regexp.MustCompile(`^\d{10}\.\d{6}$`)

func TestPostUpdateAndThreadReply(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddChannel(Channel{ID: "C0001", Name: "risk-ops", BotIsMember: true})
	api := newAPI(fake)

	channel, ts, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("Reset alice?", false), cardBlocks("rr-1"))
	if err != nil {
		t.Fatalf("PostMessage: %v", err)
	}
	if channel != "C0001" || !tsPattern.MatchString(ts) {
		t.Fatalf("PostMessage = %q %q", channel, ts)
	}
	posted, err := fake.WaitMessage(ctx, func(m Message) bool { return m.TS == ts })
	if err != nil {
		t.Fatal(err)
	}
	if posted.Text != "Reset alice?" || !strings.Contains(string(posted.Blocks), `"action_id":"risk_reset_approve"`) {
		t.Errorf("stored card = %+v blocks %s", posted, posted.Blocks)
	}

	_, _, _, err = api.UpdateMessageContext(ctx, "C0001", ts, slack.MsgOptionText("Approved", false),
		slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*Approved* by <@U0002>", false, false), nil, nil)))
	if err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	updated, err := fake.WaitMessage(ctx, func(m Message) bool { return m.TS == ts && m.Updates == 1 })
	if err != nil {
		t.Fatal(err)
	}
	if updated.Text != "Approved" || strings.Contains(string(updated.Blocks), "risk_reset_approve") {
		t.Errorf("updated card = %q blocks %s, want buttons gone", updated.Text, updated.Blocks)
	}

	_, replyTS, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("Reset done", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatalf("thread reply: %v", err)
	}
	if replyTS <= ts {
		t.Errorf("reply ts %s not after card ts %s", replyTS, ts)
	}
	// A reply to a reply lands in the parent's thread, as in Slack.
	_, nestedTS, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("again", false), slack.MsgOptionTS(replyTS))
	if err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages("C0001")
	if len(msgs) != 3 || msgs[1].ThreadTS != ts || msgs[2].ThreadTS != ts || msgs[2].TS != nestedTS {
		t.Errorf("messages = %+v", msgs)
	}

	_, _, err = api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("lost", false), slack.MsgOptionTS("1600000000.000100"))
	if code := slackErrorCode(err); code != "thread_not_found" {
		t.Errorf("reply to unknown thread: %v, want thread_not_found", err)
	}
	_, _, _, err = api.UpdateMessageContext(ctx, "C0001", "1600000000.000100", slack.MsgOptionText("x", false))
	if code := slackErrorCode(err); code != "message_not_found" {
		t.Errorf("update of unknown ts: %v, want message_not_found", err)
	}
	// Omitted fields survive an update, as in Slack.
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0001", ts, slack.MsgOptionText("Approved again", false)); err != nil {
		t.Fatal(err)
	}
	if m, _ := fake.WaitMessage(ctx, func(m Message) bool { return m.TS == ts && m.Updates == 2 }); !strings.Contains(string(m.Blocks), "Approved") {
		t.Errorf("blocks lost on text-only update: %s", m.Blocks)
	}
}

func TestChannelErrors(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddChannel(Channel{ID: "C0001", Name: "risk-ops", BotIsMember: true})
	fake.AddChannel(Channel{ID: "C0002", Name: "general"})
	fake.AddChannel(Channel{ID: "C0003", Name: "old", BotIsMember: true, Archived: true})
	fake.AddChannel(Channel{ID: "G0001", Name: "secret", Private: true})
	fake.AddUser(User{ID: "U0001", Name: "alice"})
	api := newAPI(fake)

	tests := []struct {
		channel, wantErr, wantChannel string
	}{
		{channel: "C0001", wantChannel: "C0001"},
		{channel: "C0002", wantErr: "not_in_channel"},
		{channel: "C9999", wantErr: "channel_not_found"},
		{channel: "C0003", wantErr: "is_archived"},
		{channel: "G0001", wantErr: "channel_not_found"},
		{channel: "", wantErr: "channel_not_found"},
		{channel: "U0001", wantChannel: "D0001"}, // posting to a user opens the app DM
	}
	for _, tt := range tests {
		t.Run(tt.channel, func(t *testing.T) {
			got, _, err := api.PostMessageContext(ctx, tt.channel, slack.MsgOptionText("hi", false))
			if code := slackErrorCode(err); code != tt.wantErr || (err != nil && tt.wantErr == "") {
				t.Fatalf("PostMessage(%q) error = %v, want %q", tt.channel, err, tt.wantErr)
			}
			if got != tt.wantChannel {
				t.Errorf("channel = %q, want %q", got, tt.wantChannel)
			}
		})
	}
}

func TestMessageLimits(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})
	api := newAPI(fake)
	divider := func(n int) []slack.Block {
		blocks := make([]slack.Block, n)
		for i := range blocks {
			blocks[i] = slack.NewDividerBlock()
		}
		return blocks
	}
	button := func(actionID, value string) slack.MsgOption {
		return slack.MsgOptionBlocks(slack.NewActionBlock("a",
			slack.NewButtonBlockElement(actionID, value, slack.NewTextBlockObject(slack.PlainTextType, "Go", false, false))))
	}

	tests := []struct {
		name        string
		opts        []slack.MsgOption
		wantErr     string
		wantPointer string
	}{
		{"text at limit", []slack.MsgOption{slack.MsgOptionText(strings.Repeat("é", 40000), false)}, "", ""},
		{"text over limit", []slack.MsgOption{slack.MsgOptionText(strings.Repeat("a", 40001), false)}, "msg_too_long", ""},
		{"no content", nil, "no_text", ""},
		{"50 blocks", []slack.MsgOption{slack.MsgOptionBlocks(divider(50)...)}, "", ""},
		{"51 blocks", []slack.MsgOption{slack.MsgOptionBlocks(divider(51)...)}, "invalid_blocks", "/blocks"},
		{"value at limit", []slack.MsgOption{button("ok", strings.Repeat("v", 2000))}, "", ""},
		{"value over limit", []slack.MsgOption{button("ok", strings.Repeat("v", 2001))}, "invalid_blocks", "/blocks/0/elements/0/value"},
		{"action_id at limit", []slack.MsgOption{button(strings.Repeat("a", 255), "v")}, "", ""},
		{"action_id over limit", []slack.MsgOption{button(strings.Repeat("a", 256), "v")}, "invalid_blocks", "/blocks/0/elements/0/action_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := api.PostMessageContext(ctx, "C0001", tt.opts...)
			if code := slackErrorCode(err); code != tt.wantErr || (err != nil && tt.wantErr == "") {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if tt.wantPointer == "" {
				return
			}
			msgs := slackErrorMessages(err)
			if len(msgs) == 0 || !strings.Contains(msgs[0], "[json-pointer:"+tt.wantPointer+"]") {
				t.Errorf("response_metadata.messages = %q, want pointer %s", msgs, tt.wantPointer)
			}
		})
	}

	raw := []struct{ blocks, wantErr string }{
		{`[{"block_id":"x"}]`, "invalid_blocks"},
		{`[{"type":"no_such_block"}]`, "invalid_blocks"},
		{`["section"]`, "invalid_blocks"},
		{`{"type":"section"}`, "invalid_blocks_format"},
		{`[{"type":"divider","block_id":"d"},{"type":"divider","block_id":"d"}]`, "invalid_blocks"},
		{`[{"type":"section","text":{"type":"mrkdwn","text":"ok"}}]`, ""},
	}
	for _, tt := range raw {
		form := url.Values{"token": {fake.BotToken()}, "channel": {"C0001"}, "blocks": {tt.blocks}}
		_, body := postRaw(t, fake, "chat.postMessage", form, nil)
		if got, _ := body["error"].(string); got != tt.wantErr {
			t.Errorf("blocks %s: error %q, want %q (%v)", tt.blocks, got, tt.wantErr, body)
		}
	}
}

func TestRateLimitNextIsSeenBySlackGo(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})
	api := newAPI(fake)

	for _, tt := range []struct{ retryAfter, want time.Duration }{
		{1500 * time.Millisecond, 2 * time.Second},
		{0, time.Second},
		{3 * time.Second, 3 * time.Second},
	} {
		fake.RateLimitNext("chat.postMessage", tt.retryAfter)
		_, _, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("x", false))
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != tt.want {
			t.Errorf("RateLimitNext(%v): error %v, want RateLimitedError with RetryAfter %v", tt.retryAfter, err, tt.want)
		}
	}
	if _, _, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("x", false)); err != nil {
		t.Fatalf("call after the faults: %v", err)
	}
	calls := fake.Calls("chat.postMessage")
	if len(calls) != 4 || calls[0].Status != http.StatusTooManyRequests || calls[0].Error != "ratelimited" || calls[3].Status != http.StatusOK {
		t.Errorf("calls = %+v", calls)
	}
	if len(fake.Messages("C0001")) != 1 {
		t.Errorf("rate-limited calls stored messages: %+v", fake.Messages("C0001"))
	}
}

func TestFailNextAndHook(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddUser(User{ID: "U0001", Name: "alice", Email: "alice@example.com"})
	api := newAPI(fake)

	fake.FailNext("users.info", "ratelimited")
	fake.FailNext("users.info", "fatal_error")
	for _, want := range []string{"ratelimited", "fatal_error"} {
		if _, err := api.GetUserInfoContext(ctx, "U0001"); slackErrorCode(err) != want {
			t.Errorf("GetUserInfo = %v, want %s", err, want)
		}
	}
	if _, err := api.GetUserInfoContext(ctx, "U0001"); err != nil {
		t.Errorf("third call: %v", err)
	}

	fake.SetHook(func(method string, form url.Values) (int, any, bool) {
		if method == "users.info" && form.Get("user") == "U0001" {
			return 0, map[string]any{"ok": false, "error": "user_not_visible"}, true
		}
		return 0, nil, false
	})
	if _, err := api.GetUserInfoContext(ctx, "U0001"); slackErrorCode(err) != "user_not_visible" {
		t.Errorf("hooked call = %v", err)
	}
	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Errorf("unhooked call: %v", err)
	}
	fake.SetHook(nil)
	if _, err := api.GetUserInfoContext(ctx, "U0001"); err != nil {
		t.Errorf("after removing the hook: %v", err)
	}
	last, err := fake.WaitCall(ctx, "users.info", func(c Call) bool { return c.Error == "user_not_visible" })
	if err != nil || last.Form.Get("user") != "U0001" {
		t.Errorf("WaitCall = %+v, %v", last, err)
	}
}

func TestTokens(t *testing.T) {
	ctx := testContext(t)
	fake := New(t, WithBotToken("xoxb-right"), WithAppToken("xapp-right"))
	fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})

	wrongBot := slack.New("xoxb-wrong", slack.OptionAPIURL(fake.APIURL()))
	if _, err := wrongBot.AuthTestContext(ctx); slackErrorCode(err) != "invalid_auth" {
		t.Errorf("wrong bot token: %v, want invalid_auth", err)
	}
	appAsBot := slack.New("xapp-right", slack.OptionAPIURL(fake.APIURL()))
	if _, _, err := appAsBot.PostMessageContext(ctx, "C0001", slack.MsgOptionText("x", false)); slackErrorCode(err) != "not_allowed_token_type" {
		t.Errorf("app token on chat.postMessage: %v, want not_allowed_token_type", err)
	}
	botAsApp := slack.New("xoxb-right", slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken("xoxb-right"))
	if _, _, err := botAsApp.StartSocketModeContext(ctx); slackErrorCode(err) != "not_allowed_token_type" {
		t.Errorf("bot token on apps.connections.open: %v, want not_allowed_token_type", err)
	}
	// Slack wants the app token in the Authorization header for this method.
	if _, body := postRaw(t, fake, "apps.connections.open", url.Values{"token": {"xapp-right"}}, nil); body["error"] != "invalid_auth" {
		t.Errorf("app token as form field: %v", body)
	}
	if _, body := postRaw(t, fake, "chat.postMessage", url.Values{"channel": {"C0001"}, "text": {"x"}}, nil); body["error"] != "not_authed" {
		t.Errorf("no token: %v", body)
	}
	header := http.Header{"Authorization": {"Bearer xoxb-right"}}
	if _, body := postRaw(t, fake, "chat.postMessage", url.Values{"channel": {"C0001"}, "text": {"x"}}, header); body["ok"] != true {
		t.Errorf("bot token as bearer: %v", body)
	}
	if status, body := postRaw(t, fake, "chat.nope", url.Values{"token": {"xoxb-right"}}, nil); status != http.StatusOK || body["error"] != "unknown_method" {
		t.Errorf("unknown method: %d %v", status, body)
	}
}

func TestDirectoryMethods(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddUser(User{ID: "U0001", Name: "alice", RealName: "Alice A", Email: "alice@example.com"})
	fake.AddUser(User{ID: "U0009", Name: "gone", Email: "gone@example.com", Deleted: true})
	fake.AddUser(User{ID: "U0BOT2", Name: "otherbot", Email: "bot@example.com", IsBot: true})
	fake.SetGroupMembers("S0001", "U0001", "U0002")
	fake.AddChannel(Channel{ID: "C0001", Name: "risk-ops", BotIsMember: true})
	fake.AddChannel(Channel{ID: "G0001", Name: "leads", BotIsMember: true, Private: true})
	api := newAPI(fake)

	u, err := api.GetUserInfoContext(ctx, "U0001")
	if err != nil || u.Profile.Email != "alice@example.com" || u.Name != "alice" || u.RealName != "Alice A" {
		t.Errorf("users.info = %+v, %v", u, err)
	}
	if u, err := api.GetUserInfoContext(ctx, "U0009"); err != nil || !u.Deleted {
		t.Errorf("deleted user = %+v, %v", u, err)
	}
	if u, err := api.GetUserInfoContext(ctx, "U0BOT2"); err != nil || !u.IsBot || u.Profile.Email != "" {
		t.Errorf("bot user = %+v, %v", u, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U4040"); slackErrorCode(err) != "user_not_found" {
		t.Errorf("unknown user: %v", err)
	}

	members, err := api.GetUserGroupMembersContext(ctx, "S0001")
	if err != nil || fmt.Sprint(members) != "[U0001 U0002]" {
		t.Errorf("usergroups.users.list = %v, %v", members, err)
	}
	if _, err := api.GetUserGroupMembersContext(ctx, "S4040"); slackErrorCode(err) != "no_such_subteam" {
		t.Errorf("unknown group: %v", err)
	}

	ch, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "G0001"})
	if err != nil || ch.Name != "leads" || !ch.IsPrivate || !ch.IsMember || ch.IsArchived {
		t.Errorf("conversations.info = %+v, %v", ch, err)
	}

	resp, err := api.AuthTestContext(ctx)
	if err != nil || resp.UserID != BotUserID || resp.TeamID != TeamID || resp.BotID != BotID {
		t.Errorf("auth.test = %+v, %v", resp, err)
	}

	_, ts, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("card", false))
	if err != nil {
		t.Fatal(err)
	}
	link, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "C0001", Ts: ts})
	want := "https://example.slack.com/archives/C0001/p" + strings.ReplaceAll(ts, ".", "")
	if err != nil || link != want {
		t.Errorf("permalink = %q, %v; want %q", link, err, want)
	}

	ephTS, err := api.PostEphemeralContext(ctx, "C0001", "U0001", slack.MsgOptionText("only you", false))
	if err != nil || !tsPattern.MatchString(ephTS) {
		t.Fatalf("postEphemeral = %q, %v", ephTS, err)
	}
	eph, err := fake.WaitEphemeral(ctx, func(e Ephemeral) bool { return e.User == "U0001" })
	if err != nil || eph.Text != "only you" || eph.Channel != "C0001" {
		t.Errorf("ephemeral = %+v, %v", eph, err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C0001", "U4040", slack.MsgOptionText("x", false)); slackErrorCode(err) != "user_not_found" {
		t.Errorf("ephemeral to unknown user: %v", err)
	}
}

func TestWithoutEmailScope(t *testing.T) {
	ctx := testContext(t)
	fake := New(t, WithoutEmailScope())
	fake.AddUser(User{ID: "U0001", Name: "alice", Email: "alice@example.com"})
	u, err := newAPI(fake).GetUserInfoContext(ctx, "U0001")
	if err != nil || u.Profile.Email != "" {
		t.Errorf("users.info without users:read.email = email %q, %v", u.Profile.Email, err)
	}
}

func TestWaitReportsWhatItSaw(t *testing.T) {
	fake := New(t)
	fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})
	if _, _, err := newAPI(fake).PostMessageContext(context.Background(), "C0001", slack.MsgOptionText("the card", false)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fake.WaitMessage(ctx, func(m Message) bool { return m.Text == "something else" })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "the card") {
		t.Errorf("WaitMessage = %v, want context.Canceled naming the messages seen", err)
	}
}

func TestMatchersMayCallTheServer(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})
	if _, _, err := newAPI(fake).PostMessageContext(ctx, "C0001", slack.MsgOptionText("card", false)); err != nil {
		t.Fatal(err)
	}
	_, err := fake.WaitMessage(ctx, func(m Message) bool {
		return len(fake.Calls("chat.postMessage")) == 1 && len(fake.Messages(m.Channel)) == 1
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentPostsGetUniqueIncreasingTS(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})
	api := newAPI(fake)

	const n = 20
	waited := make(chan error, 1)
	go func() {
		_, err := fake.WaitMessage(ctx, func(m Message) bool { return m.Text == "post 7" })
		waited <- err
	}()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, _, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText(fmt.Sprintf("post %d", i), false))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages("C0001")
	for i := 1; i < len(msgs); i++ {
		if msgs[i].TS <= msgs[i-1].TS {
			t.Errorf("ts %s after %s", msgs[i].TS, msgs[i-1].TS)
		}
	}
	if len(msgs) != n {
		t.Errorf("%d messages, want %d", len(msgs), n)
	}
}

func TestJSONBodyIsRecorded(t *testing.T) {
	fake := New(t)
	fake.AddChannel(Channel{ID: "C0001", BotIsMember: true})
	body := `{"channel":"C0001","text":"json post","blocks":[{"type":"divider"}]}`
	req, err := http.NewRequest(http.MethodPost, fake.APIURL()+"chat.postMessage", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+fake.BotToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		OK bool   `json:"ok"`
		TS string `json:"ts"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	_ = resp.Body.Close()
	if err != nil || !answer.OK {
		t.Fatalf("answer %+v, %v", answer, err)
	}
	calls := fake.Calls("chat.postMessage")
	if len(calls) != 1 || calls[0].JSON["text"] != "json post" || calls[0].Form.Get("blocks") != `[{"type":"divider"}]` {
		t.Errorf("recorded call = %+v", calls)
	}
}
