package slackfake

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func reasonModal(title string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           slack.NewTextBlockObject(slack.PlainTextType, title, false, false),
		Submit:          slack.NewTextBlockObject(slack.PlainTextType, "Submit", false, false),
		CallbackID:      "risk_reset_reason",
		PrivateMetadata: `{"request_id":"rr-1"}`,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock("rr_reason", slack.NewTextBlockObject(slack.PlainTextType, "Reason", false, false), nil,
				slack.NewPlainTextInputBlockElement(nil, "reason_input")),
		}},
	}
}

func TestBlockActionCarriesCurrentMessage(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddUser(User{ID: "U0002", Name: "approver.bob"})
	fake.AddChannel(Channel{ID: "C0001", Name: "risk-ops", BotIsMember: true})
	api := newAPI(fake)
	sc := startSocketClient(t, api)

	_, ts, err := api.PostMessageContext(ctx, "C0001", slack.MsgOptionText("Reset alice?", false), cardBlocks("rr-1"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := fake.SendBlockAction(ctx, BlockAction{UserID: "U0002", ChannelID: "C0001", MessageTS: ts, ActionID: "risk_reset_approve"})
	if err != nil {
		t.Fatalf("SendBlockAction: %v", err)
	}
	evt := sc.next(ctx, t, socketmode.EventTypeInteractive)
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		t.Fatalf("event data is %T", evt.Data)
	}
	if evt.Request.EnvelopeID != id || cb.Type != slack.InteractionTypeBlockActions {
		t.Errorf("envelope %s type %q", evt.Request.EnvelopeID, cb.Type)
	}
	if len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("actions = %+v", cb.ActionCallback.BlockActions)
	}
	action := cb.ActionCallback.BlockActions[0]
	if action.ActionID != "risk_reset_approve" || action.Value != "rr-1" || action.BlockID != "rr_actions" || action.Type != "button" || action.ActionTs == "" {
		t.Errorf("action = %+v", action)
	}
	if cb.User.ID != "U0002" || cb.User.Name != "approver.bob" || cb.Channel.ID != "C0001" || cb.Container.MessageTs != ts || cb.Message.Timestamp != ts {
		t.Errorf("callback user %+v channel %+v container %+v message ts %q", cb.User, cb.Channel, cb.Container, cb.Message.Timestamp)
	}
	if len(cb.Message.Blocks.BlockSet) != 2 || cb.TriggerID == "" || cb.ResponseURL == "" {
		t.Errorf("message blocks %d, trigger %q, response_url %q", len(cb.Message.Blocks.BlockSet), cb.TriggerID, cb.ResponseURL)
	}

	// The bot answers through response_url: replace the card, then an ephemeral.
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionReplaceOriginal(cb.ResponseURL), slack.MsgOptionText("Approved by bob", false)); err != nil {
		t.Fatalf("replace_original: %v", err)
	}
	if _, err := fake.WaitMessage(ctx, func(m Message) bool { return m.TS == ts && m.Text == "Approved by bob" && m.Updates == 1 }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(cb.ResponseURL, slack.ResponseTypeEphemeral), slack.MsgOptionText("Already approved", false)); err != nil {
		t.Fatalf("ephemeral response: %v", err)
	}
	post, err := fake.WaitResponsePost(ctx, func(p ResponsePost) bool { return p.Ephemeral })
	if err != nil || post.Text != "Already approved" || post.UserID != "U0002" || post.MessageTS != ts {
		t.Errorf("ephemeral post = %+v, %v", post, err)
	}

	// A click on the stale render still arrives, carrying the message as it is now.
	if _, err := fake.SendBlockAction(ctx, BlockAction{UserID: "U0002", ChannelID: "C0001", MessageTS: ts, ActionID: "risk_reset_reject"}); err != nil {
		t.Fatalf("stale click: %v", err)
	}
	stale := sc.next(ctx, t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if stale.Message.Text != "Approved by bob" || len(stale.Message.Blocks.BlockSet) != 0 {
		t.Errorf("stale click message = %q with %d blocks, want the replaced card", stale.Message.Text, len(stale.Message.Blocks.BlockSet))
	}
	if _, err := fake.SendBlockAction(ctx, BlockAction{UserID: "U0002", ChannelID: "C0001", MessageTS: ts, ActionID: "never_rendered"}); !errors.Is(err, ErrNoSuchAction) {
		t.Errorf("click on an element never shown = %v, want ErrNoSuchAction", err)
	}
	if _, err := fake.SendBlockAction(ctx, BlockAction{UserID: "U0002", ChannelID: "C0001", MessageTS: "1.000000", ActionID: "x"}); !errors.Is(err, ErrNoSuchMessage) {
		t.Errorf("click on an unknown message = %v, want ErrNoSuchMessage", err)
	}
}

func TestResponseURLRules(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddChannel(Channel{ID: "C0001", Name: "risk-ops", BotIsMember: true})
	sc := startSocketClient(t, newAPI(fake))
	if _, err := fake.SendSlashCommand(ctx, SlashCommand{UserID: "U0001", ChannelID: "C0001", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	cmd := sc.next(ctx, t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand)

	if err := slack.PostWebhookContext(ctx, cmd.ResponseURL, &slack.WebhookMessage{Text: "usage: /risk-reset <email>"}); err != nil {
		t.Fatalf("ephemeral reply: %v", err)
	}
	if err := slack.PostWebhookContext(ctx, cmd.ResponseURL, &slack.WebhookMessage{Text: "for everyone", ResponseType: slack.ResponseTypeInChannel}); err != nil {
		t.Fatalf("in_channel reply: %v", err)
	}
	posts := fake.ResponseURLPosts()
	if len(posts) != 2 || !posts[0].Ephemeral || posts[0].Text != "usage: /risk-reset <email>" || posts[1].Ephemeral {
		t.Errorf("posts = %+v", posts)
	}
	if _, err := fake.WaitMessage(ctx, func(m Message) bool { return m.Channel == "C0001" && m.Text == "for everyone" }); err != nil {
		t.Error(err)
	}

	var status slack.StatusCodeError
	if err := slack.PostWebhookContext(ctx, cmd.ResponseURL, &slack.WebhookMessage{}); !errors.As(err, &status) || status.Code != http.StatusBadRequest {
		t.Errorf("empty reply = %v, want 400", err)
	}
	if err := slack.PostWebhookContext(ctx, cmd.ResponseURL+"x", &slack.WebhookMessage{Text: "x"}); !errors.As(err, &status) || status.Code != http.StatusNotFound {
		t.Errorf("unknown response_url = %v, want 404", err)
	}
	if got := len(fake.Calls("response_url")); got != 4 {
		t.Errorf("%d response_url calls recorded, want 4", got)
	}
}

func TestViewsOpenTriggerRulesAndSubmission(t *testing.T) {
	ctx := testContext(t)
	clock := newTestClock()
	fake := New(t, WithClock(clock.Now))
	api := newAPI(fake)
	sc := startSocketClient(t, api)
	trigger := func() string {
		t.Helper()
		if _, err := fake.SendSlashCommand(ctx, SlashCommand{UserID: "U0002", ChannelID: "C0001", Text: "x"}); err != nil {
			t.Fatal(err)
		}
		return sc.next(ctx, t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand).TriggerID
	}

	fresh := trigger()
	clock.Advance(TriggerTTL)
	view, err := api.OpenViewContext(ctx, fresh, reasonModal("Risk reset reason"))
	if err != nil {
		t.Fatalf("views.open at the TTL: %v", err)
	}
	if view.ID == "" || view.CallbackID != "risk_reset_reason" {
		t.Errorf("opened view = %+v", view.View)
	}
	if _, err := api.OpenViewContext(ctx, fresh, reasonModal("Again")); slackErrorCode(err) != "exchanged_trigger_id" {
		t.Errorf("reused trigger: %v", err)
	}
	old := trigger()
	clock.Advance(TriggerTTL + time.Millisecond)
	if _, err := api.OpenViewContext(ctx, old, reasonModal("Late")); slackErrorCode(err) != "expired_trigger_id" {
		t.Errorf("expired trigger: %v", err)
	}
	if _, err := api.OpenViewContext(ctx, "1.2.made-up", reasonModal("Made up")); slackErrorCode(err) != "invalid_trigger_id" {
		t.Errorf("made-up trigger: %v", err)
	}
	long := trigger()
	_, err = api.OpenViewContext(ctx, long, reasonModal(strings.Repeat("t", 25)))
	if slackErrorCode(err) != "invalid_arguments" || !strings.Contains(strings.Join(slackErrorMessages(err), " "), "/view/title/text") {
		t.Errorf("25-char title: %v %q", err, slackErrorMessages(err))
	}
	// A rejected view does not use up the trigger.
	if _, err := api.OpenViewContext(ctx, long, reasonModal("Fixed")); err != nil {
		t.Errorf("retry with a valid view: %v", err)
	}

	if _, err := fake.SendViewSubmission(ctx, ViewSubmission{UserID: "U0002", ViewID: view.ID,
		Values: map[string]map[string]string{"rr_reason": {"reason_input": "False positive, travel"}}}); err != nil {
		t.Fatalf("SendViewSubmission: %v", err)
	}
	cb := sc.next(ctx, t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if cb.Type != slack.InteractionTypeViewSubmission || cb.View.ID != view.ID || cb.View.CallbackID != "risk_reset_reason" || cb.View.PrivateMetadata != `{"request_id":"rr-1"}` {
		t.Errorf("submission = type %q view %+v", cb.Type, cb.View)
	}
	if got := cb.View.State.Values["rr_reason"]["reason_input"].Value; got != "False positive, travel" {
		t.Errorf("submitted reason = %q", got)
	}
	_, err = fake.SendViewSubmission(ctx, ViewSubmission{UserID: "U0002", ViewID: view.ID,
		Values: map[string]map[string]string{"forged": {"field": "x"}}})
	if !errors.Is(err, ErrNoSuchInput) {
		t.Errorf("submission of a field the view lacks = %v, want ErrNoSuchInput", err)
	}
}
