package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func TestSlashCommandIsDeliveredAndAcked(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	fake.AddUser(User{ID: "U0001", Name: "oncall.admin"})
	fake.AddChannel(Channel{ID: "C0001", Name: "risk-ops", BotIsMember: true})
	sc := startSocketClient(t, newAPI(fake))

	sc.next(ctx, t, socketmode.EventTypeHello)
	if err := fake.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	id, err := fake.SendSlashCommand(ctx, SlashCommand{UserID: "U0001", ChannelID: "C0001", Text: "alice@example.com travel"})
	if err != nil {
		t.Fatalf("SendSlashCommand: %v", err)
	}

	evt := sc.next(ctx, t, socketmode.EventTypeSlashCommand)
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("event data is %T, want slack.SlashCommand", evt.Data)
	}
	want := slack.SlashCommand{
		Token: VerificationToken, TeamID: TeamID, TeamDomain: TeamDomain,
		ChannelID: "C0001", ChannelName: "risk-ops", UserID: "U0001", UserName: "oncall.admin",
		Command: "/risk-reset", Text: "alice@example.com travel", APIAppID: AppID,
		ResponseURL: cmd.ResponseURL, TriggerID: cmd.TriggerID,
	}
	if cmd != want {
		t.Errorf("slash command = %+v, want %+v", cmd, want)
	}
	if !strings.HasPrefix(cmd.ResponseURL, strings.TrimSuffix(fake.APIURL(), "api/")+"response/") {
		t.Errorf("response_url %q is not served by the fake", cmd.ResponseURL)
	}
	if cmd.TriggerID == "" {
		t.Error("trigger_id is empty")
	}
	if evt.Request.EnvelopeID != id || !evt.Request.AcceptsResponsePayload {
		t.Errorf("envelope id %q accepts_response_payload %t, want %q true", evt.Request.EnvelopeID, evt.Request.AcceptsResponsePayload, id)
	}

	if err := sc.client.Ack(*evt.Request, map[string]any{"response_type": "ephemeral", "text": "Working on it..."}); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	ack, err := fake.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var payload struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(ack.Payload, &payload); err != nil || payload.Text != "Working on it..." {
		t.Errorf("ack payload %s: text %q, err %v", ack.Payload, payload.Text, err)
	}
	if ack.SentAt.IsZero() || ack.At.Before(ack.SentAt) {
		t.Errorf("ack at %v, envelope sent at %v", ack.At, ack.SentAt)
	}
	if n := fake.AckCount(id); n != 1 {
		t.Errorf("AckCount = %d, want 1", n)
	}
	if frames := fake.UnknownFrames(); len(frames) != 0 {
		t.Errorf("unknown frames: %q", frames)
	}
}

func TestRedeliveryCarriesRetryAttempt(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	sc := startSocketClient(t, newAPI(fake))

	id, err := fake.SendSlashCommand(ctx, SlashCommand{UserID: "U0001", ChannelID: "C0001", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	first := sc.next(ctx, t, socketmode.EventTypeSlashCommand)
	if first.Request.RetryAttempt != 0 || first.Request.RetryReason != "" {
		t.Errorf("first delivery retry %d %q, want 0 \"\"", first.Request.RetryAttempt, first.Request.RetryReason)
	}
	if err := fake.Redeliver(ctx, id); err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	again := sc.next(ctx, t, socketmode.EventTypeSlashCommand)
	if again.Request.EnvelopeID != id || again.Request.RetryAttempt != 1 || again.Request.RetryReason != "timeout" {
		t.Errorf("redelivery envelope %q retry %d %q, want %q 1 timeout", again.Request.EnvelopeID, again.Request.RetryAttempt, again.Request.RetryReason, id)
	}
	if again.Data.(slack.SlashCommand).TriggerID != first.Data.(slack.SlashCommand).TriggerID {
		t.Error("redelivery changed the payload")
	}
	if err := fake.Redeliver(ctx, id); err != nil {
		t.Fatal(err)
	}
	if third := sc.next(ctx, t, socketmode.EventTypeSlashCommand); third.Request.RetryAttempt != 2 {
		t.Errorf("second redelivery retry_attempt %d, want 2", third.Request.RetryAttempt)
	}

	if err := sc.client.Ack(*again.Request); err != nil {
		t.Fatal(err)
	}
	if _, err := fake.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := fake.Redeliver(ctx, "no-such-envelope"); !errors.Is(err, ErrUnknownEnvelope) {
		t.Errorf("Redeliver(unknown) = %v, want ErrUnknownEnvelope", err)
	}
}

func TestConnectionsShareEnvelopes(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	first := startSocketClient(t, newAPI(fake))
	if err := fake.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	second := startSocketClient(t, newAPI(fake))
	if err := fake.WaitConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	hello := second.next(ctx, t, socketmode.EventTypeHello)
	if hello.Request.NumConnections != 2 {
		t.Errorf("second hello num_connections = %d, want 2", hello.Request.NumConnections)
	}

	var ids [2]string
	for i := range ids {
		id, err := fake.SendSlashCommand(ctx, SlashCommand{UserID: "U0001", ChannelID: "C0001", Text: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	// Round-robin: each connection gets exactly one of the two.
	a := first.next(ctx, t, socketmode.EventTypeSlashCommand)
	b := second.next(ctx, t, socketmode.EventTypeSlashCommand)
	if a.Request.EnvelopeID == b.Request.EnvelopeID {
		t.Fatalf("both connections got envelope %s", a.Request.EnvelopeID)
	}
	if err := first.client.Ack(*a.Request); err != nil {
		t.Fatal(err)
	}
	if err := second.client.Ack(*b.Request); err != nil {
		t.Fatal(err)
	}
	ackA, err := fake.WaitAck(ctx, a.Request.EnvelopeID)
	if err != nil {
		t.Fatal(err)
	}
	ackB, err := fake.WaitAck(ctx, b.Request.EnvelopeID)
	if err != nil {
		t.Fatal(err)
	}
	if ackA.ConnID == ackB.ConnID {
		t.Errorf("both acks came on connection %d", ackA.ConnID)
	}

	// Pinned routing: the newer connection gets both.
	conns := fake.ConnectionIDs()
	if len(conns) != 2 {
		t.Fatalf("ConnectionIDs = %v, want 2", conns)
	}
	fake.RouteTo(conns[1])
	for range 2 {
		if _, err := fake.SendSlashCommand(ctx, SlashCommand{UserID: "U0001", ChannelID: "C0001", Text: "pinned"}); err != nil {
			t.Fatal(err)
		}
	}
	second.next(ctx, t, socketmode.EventTypeSlashCommand)
	second.next(ctx, t, socketmode.EventTypeSlashCommand)
}

func TestDisconnectAndDropMakeSlackGoReconnect(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	sc := startSocketClient(t, newAPI(fake))
	if err := fake.WaitHellos(ctx, 1); err != nil {
		t.Fatal(err)
	}

	if err := fake.SendDisconnect(ctx, "refresh_requested"); err != nil {
		t.Fatalf("SendDisconnect: %v", err)
	}
	if err := fake.WaitHellos(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := fake.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.DropConnections()
	if err := fake.WaitHellos(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Calls("apps.connections.open")); n < 3 {
		t.Errorf("apps.connections.open called %d times, want a fresh URL per connection (>= 3)", n)
	}
	// Envelopes after the reconnect reach the new connection.
	id, err := fake.SendSlashCommand(ctx, SlashCommand{UserID: "U0001", ChannelID: "C0001", Text: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if evt := sc.next(ctx, t, socketmode.EventTypeSlashCommand); evt.Request.EnvelopeID != id {
		t.Errorf("got envelope %s, want %s", evt.Request.EnvelopeID, id)
	}
	if err := fake.SendDisconnect(ctx, "bogus"); !errors.Is(err, ErrBadReason) {
		t.Errorf("SendDisconnect(bogus) = %v, want ErrBadReason", err)
	}
}

func TestStopPingsTripsSlackGoWatchdog(t *testing.T) {
	ctx := testContext(t)
	fake := New(t, WithPingInterval(20*time.Millisecond))
	startSocketClient(t, newAPI(fake), socketmode.OptionPingInterval(200*time.Millisecond))
	if err := fake.WaitHellos(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.StopPings()
	if err := fake.WaitHellos(ctx, 2); err != nil {
		t.Fatalf("slack-go did not reconnect after pings stopped: %v", err)
	}
	fake.ResumePings()
}

func TestRawFramesMatchSlackShapes(t *testing.T) {
	ctx := testContext(t)
	fake := New(t, WithPingInterval(10*time.Millisecond))
	conn := dialLink(ctx, t, fake)
	pinged := make(chan struct{}, 1)
	conn.SetPingHandler(func(string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return nil
	})

	hello := readJSONFrame(t, conn)
	info, _ := hello["connection_info"].(map[string]any)
	debug, _ := hello["debug_info"].(map[string]any)
	if hello["type"] != "hello" || hello["num_connections"] != 1.0 || info["app_id"] != AppID || debug["host"] == nil {
		t.Errorf("hello = %v", hello)
	}

	// Garbage and a ping are not acks; an ack of an envelope the fake sent is.
	if err := fake.SendEnvelope(ctx, []byte(`{"envelope_id":"env-1","type":"events_api","payload":{}}`)); err != nil {
		t.Fatal(err)
	}
	if err := fake.SendEnvelope(ctx, []byte(`{"type":`)); err != nil {
		t.Fatal(err)
	}
	if env := readJSONFrame(t, conn); env["envelope_id"] != "env-1" {
		t.Errorf("first envelope = %v", env)
	}
	if _, data, err := conn.ReadMessage(); err != nil || string(data) != `{"type":` {
		t.Errorf("malformed frame arrived as %q (%v)", data, err)
	}
	// Control frames are only seen by a reader: keep reading until the
	// connection closes at cleanup.
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case <-pinged:
	case <-ctx.Done():
		t.Fatal("no websocket ping")
	}
	for _, frame := range []string{`not json`, `{"envelope_id":"never-sent"}`, `{"envelope_id":"env-1","extra":1}`, `{"envelope_id":"env-1"}`} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	ack, err := fake.WaitAck(ctx, "env-1")
	if err != nil {
		t.Fatal(err)
	}
	if ack.Payload != nil {
		t.Errorf("ack payload = %s, want none", ack.Payload)
	}
	unknown := fake.UnknownFrames()
	if len(unknown) != 3 {
		t.Errorf("unknown frames = %q, want the 3 non-acks", unknown)
	}
}

func TestTicketsWorkOnce(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	_, wsURL, err := newAPI(fake).StartSocketModeContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(wsURL, "ws://127.0.0.1:") || !strings.Contains(wsURL, "/link/?ticket=") {
		t.Errorf("url = %q", wsURL)
	}
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer conn.Close()
	_, resp, err = websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("second dial with the same ticket: err %v, resp %v", err, resp)
	}
	if resp != nil {
		_ = resp.Body.Close()
	}
}

func TestInvalidAppTokenStopsSocketMode(t *testing.T) {
	ctx := testContext(t)
	fake := New(t)
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken("xapp-1-wrong"))
	sc := startSocketClient(t, api)
	select {
	case err := <-sc.runErr:
		if err == nil || err.Error() != "invalid_auth" {
			t.Errorf("RunContext = %v, want invalid_auth", err)
		}
	case <-ctx.Done():
		t.Fatal("socketmode kept retrying with a bad app token")
	}
}

func TestSendWaitsForAConnection(t *testing.T) {
	fake := New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := fake.SendSlashCommand(ctx, SlashCommand{UserID: "U1"}); !errors.Is(err, context.Canceled) {
		t.Errorf("SendSlashCommand without connections = %v, want context.Canceled", err)
	}
}
