package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"risk-reset-bot/bot"
	"risk-reset-bot/cloudflare"
	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

// Envelope templates: ../shared/slack-payloads/envelope_*.json, compacted.
// The fuzzed fields are substituted into copies of them.
const (
	slashEnvelopeTemplate = `{"envelope_id":"00000000-0000-4000-8000-000000000001","payload":{"token":"FAKEverificationTOKEN0000","team_id":"T0001","team_domain":"example","enterprise_id":"E0001","enterprise_name":"Example Org","channel_id":"C0001","channel_name":"risk-ops","user_id":"U0001","user_name":"oncall.admin","command":"/risk-reset","text":"<mailto:alice@example.com|alice@example.com>","api_app_id":"A0001","is_enterprise_install":"false","response_url":"https://hooks.slack.com/commands/T0001/1000000000001/FAKEresponseURLsecret","trigger_id":"1000000000001.1000000000002.0123456789abcdef0123456789abcdef"},"type":"slash_commands","accepts_response_payload":true}`

	blockActionsEnvelopeTemplate = `{"envelope_id":"00000000-0000-4000-8000-000000000002","payload":{"type":"block_actions","user":{"id":"U0002","username":"approver.bob","name":"approver.bob","team_id":"T0001"},"api_app_id":"A0001","token":"FAKEverificationTOKEN0000","container":{"type":"message","message_ts":"1700000000.000100","channel_id":"C0001","is_ephemeral":false},"trigger_id":"1000000000003.1000000000002.fedcba9876543210fedcba9876543210","team":{"id":"T0001","domain":"example"},"enterprise":null,"is_enterprise_install":false,"channel":{"id":"C0001","name":"risk-ops"},"message":{"user":"U0BOT","type":"message","ts":"1700000000.000100","bot_id":"B0001","app_id":"A0001","text":"Confirm risk reset for alice@example.com?","team":"T0001","blocks":[{"type":"section","block_id":"rr_summary","text":{"type":"mrkdwn","text":"<@U0001> requested a risk reset for *alice@example.com* (request ` + "`rr-0001`" + `).","verbatim":false}},{"type":"actions","block_id":"rr_actions","elements":[{"type":"button","action_id":"risk_reset_confirm","text":{"type":"plain_text","text":"Confirm reset","emoji":true},"style":"danger","value":"rr-0001"},{"type":"button","action_id":"risk_reset_cancel","text":{"type":"plain_text","text":"Cancel","emoji":true},"value":"rr-0001"}]}]},"state":{"values":{}},"response_url":"https://hooks.slack.com/actions/T0001/1000000000004/FAKEresponseURLsecret","actions":[{"action_id":"risk_reset_confirm","block_id":"rr_actions","text":{"type":"plain_text","text":"Confirm reset","emoji":true},"value":"rr-0001","style":"danger","type":"button","action_ts":"1700000012.345678"}]},"type":"interactive","accepts_response_payload":true}`

	viewSubmissionEnvelopeTemplate = `{"envelope_id":"00000000-0000-4000-8000-000000000003","payload":{"type":"view_submission","team":{"id":"T0001","domain":"example"},"user":{"id":"U0002","username":"approver.bob","name":"approver.bob","team_id":"T0001"},"api_app_id":"A0001","token":"FAKEverificationTOKEN0000","trigger_id":"1000000000005.1000000000002.00112233445566778899aabbccddeeff","enterprise":null,"is_enterprise_install":false,"view":{"id":"V0001","team_id":"T0001","type":"modal","title":{"type":"plain_text","text":"Risk reset reason","emoji":true},"submit":{"type":"plain_text","text":"Submit","emoji":true},"close":{"type":"plain_text","text":"Cancel","emoji":true},"blocks":[{"type":"input","block_id":"rr_reason","label":{"type":"plain_text","text":"Reason for reset","emoji":true},"optional":false,"dispatch_action":false,"element":{"type":"plain_text_input","action_id":"reason_input","multiline":true,"dispatch_action_config":{"trigger_actions_on":["on_enter_pressed"]}}}],"private_metadata":"{\"request_id\":\"rr-0001\",\"channel_id\":\"C0001\",\"message_ts\":\"1700000000.000100\"}","callback_id":"risk_reset_reason","state":{"values":{"rr_reason":{"reason_input":{"type":"plain_text_input","value":"False positive from the fraud model; verified with the customer."}}}},"hash":"1700000020.AbCdEf12","clear_on_close":false,"notify_on_close":false,"previous_view_id":null,"root_view_id":"V0001","app_id":"A0001","external_id":"","app_installed_team_id":"T0001","bot_id":"B0001"},"response_urls":[]},"type":"interactive","accepts_response_payload":true}`
)

// eventCallback is an Events API payload, which the bot has no use for.
const eventCallback = `{"token":"x","team_id":"T0001","api_app_id":"A0001","type":"event_callback","event_id":"Ev0001","event_time":1700000000,` +
	`"event":{"type":"app_mention","user":"U0001","text":"<@U0BOT> hi","ts":"1700000000.000100","channel":"C0001","event_ts":"1700000000.000100"}}`

// Envelope kinds, chosen by the fuzzed kind modulo kindCount.
const (
	kindSlash          = iota // template slash command with text, user, channel
	kindBlockActions          // template click with user, channel, action_id, value
	kindViewSubmission        // template modal submission: callback_id, metadata, reason
	kindRawPayload            // envelope around raw bytes as the payload
	kindRawFrame              // raw bytes as the whole frame
	kindCount
)

// fuzzWait bounds every wait of one input: an ack comes within
// milliseconds, and Slack redelivers after 3 s.
const fuzzWait = 5 * time.Second

// FuzzSlackEnvelopes sends envelopes built from fuzzed fields, and raw
// garbage, to one running bot. Every envelope with an envelope_id must be
// acked exactly once, the bot must keep serving, and no fuzzed text may
// reach a Slack lookup or a Cloudflare URL.
//
//	go test -run=^$ -fuzz=FuzzSlackEnvelopes -fuzztime=20s ./cmd/risk-reset-bot/
func FuzzSlackEnvelopes(f *testing.F) {
	addEnvelopeSeeds(f)
	fb := startFuzzBot(f)
	f.Fuzz(func(t *testing.T, kind uint8, text, userID, channelID, actionID, value string, raw []byte) {
		fb.check(t, fuzzInput{kind: kind, text: text, userID: userID, channelID: channelID, actionID: actionID, value: value, raw: raw})
	})
}

func addEnvelopeSeeds(f *testing.F) {
	add := func(kind uint8, text, user, channel, action, value string, raw []byte) {
		f.Add(kind, text, user, channel, action, value, raw)
	}
	// The shared payloads as they are, and DESIGN section 5's forms from
	// a requester, a stranger and an unknown user, in and out of channels.
	add(kindSlash, "<mailto:alice@example.com|alice@example.com>", analyst, channelOps, "", "", nil)
	for _, text := range []string{
		aliceID, aliceEmail + " travel false positive, INC-4711", "<@U0ALICE|alice>", "<@U0ALICE>",
		"help", "", "<!here>", "<#C0001|soc-ops>", "alice@example.com bob@example.com", "../../etc/passwd",
		"alice@example.com/../x", "a?b@example.com", "&lt;@U0001&gt;", "\xff\xfe", strings.Repeat("a", 5000),
	} {
		add(kindSlash, text, analyst, channelOps, "", "", nil)
	}
	add(kindSlash, bobEmail+" new laptop", stranger, channelOps, "", "", nil)
	add(kindSlash, bobEmail+" not in channel", lead, channelOther, "", "", nil)
	add(kindSlash, bobEmail, "U0NOBODY0", "C0NOWHERE", "", "", nil)
	add(kindBlockActions, "Confirm risk reset for alice@example.com?", lead, channelOps, "risk_reset_confirm", "rr-0001", nil)
	add(kindBlockActions, "", lead, channelOps, bot.ActionApprove, "6f1b1b7e-2f4b-4a8e-9d1c-3b5a7c9e1f20", nil)
	add(kindBlockActions, "", analyst, channelOps, bot.ActionReject, "../../zt_risk_scoring/x", nil)
	add(kindBlockActions, "", stranger, "", bot.ActionApprove, "", nil)
	add(kindViewSubmission, "False positive from the fraud model; verified with the customer.", analyst, channelOps, "risk_reset_reason", aliceEmail, nil)
	add(kindViewSubmission, "", analyst, channelOps, "risk_reset_reason", "<!here>", nil)
	add(kindViewSubmission, strings.Repeat("r", 1001), lead, channelOps, "risk_reset_deny", "6f1b1b7e-2f4b-4a8e-9d1c-3b5a7c9e1f20", nil)
	add(kindViewSubmission, "not a false positive", lead, channelOps, "risk_reset_deny", "../x", nil)
	for _, tmpl := range []string{slashEnvelopeTemplate, blockActionsEnvelopeTemplate, viewSubmissionEnvelopeTemplate} {
		var env struct {
			Payload json.RawMessage `json:"payload"`
		}
		_ = json.Unmarshal([]byte(tmpl), &env)
		add(kindRawPayload, "", "", "", "", "", env.Payload)
		add(kindRawFrame, "", "", "", "", "", []byte(tmpl))
	}
	// The payload of the events_api envelope as the kind selects each
	// envelope type in turn.
	for kind := uint8(kindRawPayload); kind < 4*kindCount; kind += kindCount {
		add(kind, "", "", "", "quantum_entanglement", "", []byte(eventCallback))
	}
	for _, raw := range []string{
		`"this is not an object"`, `{"type":"block_actions","actions":"not a list"}`, `null`, `[]`,
		`{"type":"view_submission","view":{"callback_id":"risk_reset_reason","private_metadata":"{\"r\":\"https://example.com/\"}"}}`,
	} {
		add(kindRawPayload, "", "", "", "", "", []byte(raw))
	}
	for _, raw := range []string{
		`{"envelope_id":5}`, `{`, ``, `{"type":"disconnect","reason":"warning"}`, `{"type":"hello"}`,
		`{"type":"events_api","payload":{"type":"event_callback"}} trailing`, `{"type":"slash_commands","retry_attempt":"x"}`,
		`{"type":"quantum_entanglement","payload":{"spin":"up"}}`,
		`{"type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":"","payload":` + eventCallback + `}`,
	} {
		add(kindRawFrame, "", "", "", "", "", []byte(raw))
	}
}

// fuzzInput is one set of fuzz arguments.
type fuzzInput struct {
	kind                                     uint8
	text, userID, channelID, actionID, value string
	raw                                      []byte
}

// fuzzBot is one bot, run through run as main runs it, against fakes that
// live as long as the fuzz run: starting one per input would take far
// longer than the input itself.
type fuzzBot struct {
	slack    *slackfake.Server
	cfSrv    *cfapitest.Server
	tb       *collectingTB
	logs     *logTail
	respBase string // the fake's response_url prefix, so no post leaves loopback
	stop     context.CancelFunc
	done     chan error

	mu       sync.Mutex
	lookups  []slackLookup // Slack lookups since the last check
	exitErr  error         // what run returned, once it has
	exited   bool
	cfSeen   int          // Cloudflare requests already checked
	recent   []inputMarks // the last inputs, newest last
	fixtures []string     // strings of the templates and the seeded fakes
}

// slackLookup is a call of a Slack method whose arguments are identities.
type slackLookup struct {
	method string
	form   url.Values
}

// lookupMethods are the Slack methods whose every argument must be an
// identity, never text a person typed.
var lookupMethods = map[string]bool{"users.info": true, "usergroups.users.list": true, "conversations.info": true}

// inputMarks are the strings of one input that must not reach Slack
// lookups or Cloudflare URLs (poison), and those that may (legit).
type inputMarks struct{ poison, legit []string }

// recentInputs is how many inputs back a late request is checked against;
// a handler's calls arrive within a few inputs of its envelope.
const recentInputs = 64

func startFuzzBot(f *testing.F) *fuzzBot {
	tb := &collectingTB{TB: f}
	h := &harness{
		slack: slackfake.New(tb),
		cf:    cfapitest.NewFakeAccount(accountID),
		clock: &fakeClock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)},
	}
	h.cf.SetToken(cfapitest.FakeToken{Value: cfToken, ID: "tok1", Status: "active", Owner: cfapitest.AccountToken})
	h.cfSrv = cfapitest.NewServer(tb, h.cf)
	h.seed()
	fb := &fuzzBot{
		slack: h.slack, cfSrv: h.cfSrv, tb: tb, logs: &logTail{},
		respBase: strings.TrimSuffix(h.slack.APIURL(), "api/") + "response/",
		done:     make(chan error, 1),
		fixtures: fixtureStrings(),
	}
	environ := []string{
		"SLACK_BOT_TOKEN=" + h.slack.BotToken(), "SLACK_APP_TOKEN=" + h.slack.AppToken(), "SLACK_API_URL=" + h.slack.APIURL(),
		"CLOUDFLARE_ACCOUNT_ID=" + accountID, "CLOUDFLARE_API_TOKEN=" + cfToken, "CLOUDFLARE_API_URL=" + h.cfSrv.URL,
		"REQUESTER_IDS=" + analyst + "," + lead, "APPROVER_IDS=" + leadsGroup, "AUDIT_CHANNEL_ID=" + channelAudit,
		"REQUEST_TTL=30m", "LOG_LEVEL=info", "HTTP_ADDR=127.0.0.1:0", "REQUIRE_REASON=false",
	}
	ctx, stop := context.WithCancel(context.Background())
	fb.stop = stop
	go func() {
		fb.done <- run(ctx, nil, environ, fb.logs,
			withClock(h.clock.Now),
			withSweepInterval(50*time.Millisecond),
			withCloudflareOptions(cloudflare.WithBackoff(time.Millisecond, 5*time.Millisecond), cloudflare.WithRetryBudget(2*time.Second)),
		)
	}()
	f.Cleanup(func() { fb.shutdown(f) })
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.slack.WaitConnected(wait, 1); err != nil {
		f.Fatalf("bot did not connect to Socket Mode: %v\nlogs:\n%s", err, fb.logs)
	}
	h.slack.SetHook(func(method string, form url.Values) (int, any, bool) {
		if lookupMethods[method] {
			fb.mu.Lock()
			fb.lookups = append(fb.lookups, slackLookup{method, form})
			fb.mu.Unlock()
		}
		return 0, nil, false
	})
	return fb
}

func (fb *fuzzBot) shutdown(f *testing.F) {
	fb.stop()
	if exited, err := fb.waitExit(10 * time.Second); !exited || err != nil {
		f.Errorf("run did not stop cleanly: returned=%v err=%v", exited, err)
	}
	for _, msg := range fb.tb.take() {
		f.Error(msg)
	}
}

// waitExit waits up to limit for run to return and reports whether it
// has, and what it returned.
func (fb *fuzzBot) waitExit(limit time.Duration) (exited bool, err error) {
	fb.mu.Lock()
	exited, err = fb.exited, fb.exitErr
	fb.mu.Unlock()
	if exited {
		return true, err
	}
	if limit <= 0 {
		select {
		case err = <-fb.done:
		default:
			return false, nil
		}
	} else {
		timer := time.NewTimer(limit)
		defer timer.Stop()
		select {
		case err = <-fb.done:
		case <-timer.C:
			return false, nil
		}
	}
	fb.mu.Lock()
	fb.exited, fb.exitErr = true, err
	fb.mu.Unlock()
	return true, err
}

// check sends one input and checks everything that input may have caused.
func (fb *fuzzBot) check(t *testing.T, in fuzzInput) {
	if stopped, err := fb.waitExit(0); stopped {
		t.Fatalf("the bot has stopped: %v\nlogs:\n%s", err, fb.logs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), fuzzWait)
	defer cancel()
	fb.remember(in)
	frame, envelopeID := fb.envelope(in)
	if err := fb.slack.SendEnvelope(ctx, frame); err != nil {
		t.Fatalf("sending the envelope: %v", err)
	}
	if envelopeID != "" {
		if _, err := fb.slack.WaitAck(ctx, envelopeID); err != nil {
			t.Fatalf("envelope not acked: %v\nframe: %.2000s\nlogs:\n%s", err, frame, fb.logs)
		}
	}
	fb.assertServes(ctx, t)
	// The bot acks in order on its one connection: once the help command
	// is acked, any second ack of the envelope would have arrived.
	if envelopeID != "" {
		if n := fb.slack.AckCount(envelopeID); n != 1 {
			t.Errorf("envelope acked %d times, want 1\nframe: %.2000s", n, frame)
		}
	}
	fb.checkLookups(t)
	fb.checkCloudflare(t)
	for _, msg := range fb.tb.take() {
		t.Error(msg)
	}
	if p := fb.logs.takePanics(); len(p) != 0 {
		t.Errorf("a handler panicked:\n%s\nframe: %.2000s", strings.Join(p, "\n"), frame)
	}
}

// assertServes sends a known-good help command and expects the usage in
// its ack.
func (fb *fuzzBot) assertServes(ctx context.Context, t *testing.T) {
	id, err := fb.slack.SendSlashCommand(ctx, slackfake.SlashCommand{UserID: analyst, ChannelID: channelOps, Text: "help"})
	if err != nil {
		t.Fatalf("sending help: %v\nlogs:\n%s", err, fb.logs)
	}
	ack, err := fb.slack.WaitAck(ctx, id)
	if err != nil {
		t.Fatalf("the bot no longer acks help: %v\nlogs:\n%s", err, fb.logs)
	}
	if text := usageAck(t, ack); !strings.Contains(text, "/risk-reset <user> [reason]") {
		t.Fatalf("the bot no longer answers help with the usage: %q", text)
	}
}

// envelope builds the frame for in and returns it with the envelope_id
// the fake will track, or "" when the frame has none.
func (fb *fuzzBot) envelope(in fuzzInput) ([]byte, string) {
	var frame []byte
	switch in.kind % kindCount {
	case kindSlash:
		frame = fb.fromTemplate(slashEnvelopeTemplate, func(p map[string]any) {
			p["text"], p["user_id"], p["channel_id"] = in.text, in.userID, in.channelID
			p["response_url"] = fb.responseURL()
		})
	case kindBlockActions:
		frame = fb.fromTemplate(blockActionsEnvelopeTemplate, func(p map[string]any) {
			obj(p, "user")["id"] = in.userID
			obj(p, "channel")["id"], obj(p, "container")["channel_id"] = in.channelID, in.channelID
			obj(p, "message")["text"] = in.text
			action := p["actions"].([]any)[0].(map[string]any)
			action["action_id"], action["value"] = in.actionID, in.value
			p["response_url"] = fb.responseURL()
		})
	case kindViewSubmission:
		frame = fb.fromTemplate(viewSubmissionEnvelopeTemplate, func(p map[string]any) {
			obj(p, "user")["id"] = in.userID
			view := obj(p, "view")
			view["callback_id"] = in.actionID
			meta, _ := json.Marshal(map[string]string{"c": in.channelID, "r": fb.responseURL(), "t": in.value, "id": in.value})
			view["private_metadata"] = string(meta)
			obj(obj(obj(obj(view, "state"), "values"), "rr_reason"), "reason_input")["value"] = in.text
		})
	case kindRawPayload:
		frame = fb.rawPayloadFrame(in)
	case kindRawFrame:
		frame = fb.rawFrame(in)
	}
	var probe struct {
		EnvelopeID string `json:"envelope_id"`
	}
	// Mirrors the fake: an envelope_id it can read is one it tracks acks of.
	_ = json.Unmarshal(frame, &probe)
	return frame, probe.EnvelopeID
}

// fromTemplate returns tmpl with a fresh envelope_id and its payload
// changed by edit.
func (fb *fuzzBot) fromTemplate(tmpl string, edit func(payload map[string]any)) []byte {
	var env map[string]any
	if err := json.Unmarshal([]byte(tmpl), &env); err != nil {
		panic(fmt.Sprintf("envelope template: %v", err))
	}
	env["envelope_id"] = uuid.NewString()
	edit(obj(env, "payload"))
	frame, err := json.Marshal(env)
	if err != nil {
		panic(fmt.Sprintf("envelope: %v", err))
	}
	return frame
}

func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

// envelopeTypes are the types of envelopes that carry work; hello and
// disconnect are control frames, which never have an envelope_id.
var envelopeTypes = []string{"slash_commands", "interactive", "events_api"}

// envelopeType picks a type for a raw envelope: one the bot knows, or the
// fuzzed action ID when it is not a control frame's type.
func envelopeType(in fuzzInput) string {
	i := int(in.kind/kindCount) % (len(envelopeTypes) + 1)
	if i < len(envelopeTypes) || in.actionID == "hello" || in.actionID == "disconnect" {
		return envelopeTypes[i%len(envelopeTypes)]
	}
	return in.actionID
}

// rawPayloadFrame wraps the raw bytes as the payload of an envelope: as
// JSON when they are JSON, else as a string.
func (fb *fuzzBot) rawPayloadFrame(in fuzzInput) []byte {
	var payload any = string(in.raw)
	if v, ok := decodeJSON(in.raw); ok {
		payload, _ = fb.loopbackOnly(v)
	}
	frame, err := json.Marshal(map[string]any{
		"envelope_id": uuid.NewString(), "type": envelopeType(in), "payload": payload, "accepts_response_payload": true,
	})
	if err != nil {
		panic(fmt.Sprintf("raw payload envelope: %v", err))
	}
	return frame
}

// rawFrame sends the raw bytes as the frame. When they start with a JSON
// object (which is all slack-go reads of a frame), that object gets a
// fresh envelope_id and a type that is not a control frame's; the bytes
// after it are kept.
func (fb *fuzzBot) rawFrame(in fuzzInput) []byte {
	dec := json.NewDecoder(bytes.NewReader(in.raw))
	dec.UseNumber()
	var lead any
	if dec.Decode(&lead) != nil {
		return in.raw
	}
	m, ok := lead.(map[string]any)
	if !ok {
		return in.raw
	}
	clean, _ := fb.loopbackOnly(m)
	m = clean.(map[string]any)
	typ, _ := m["type"].(string)
	for k := range m {
		// encoding/json matches keys case-insensitively.
		if strings.EqualFold(k, "type") || strings.EqualFold(k, "envelope_id") {
			delete(m, k)
		}
	}
	if typ == "" || typ == "hello" || typ == "disconnect" {
		typ = envelopeType(in)
	}
	m["type"], m["envelope_id"] = typ, uuid.NewString()
	head, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("raw frame: %v", err))
	}
	return append(head, in.raw[dec.InputOffset():]...)
}

// responseURL returns a response_url on the fake that it never handed out:
// posts to it are refused, and stay on loopback.
func (fb *fuzzBot) responseURL() string {
	return fb.respBase + strings.ReplaceAll(uuid.NewString(), "-", "")
}

func decodeJSON(data []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// loopbackOnly replaces every string that could be read as an http(s)
// URL, also inside strings that are JSON themselves (private_metadata), by
// a response_url on the fake, so a fuzzed payload never makes the bot post
// beyond loopback. It reports whether it changed anything.
func (fb *fuzzBot) loopbackOnly(v any) (any, bool) {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			var c bool
			x[k], c = fb.loopbackOnly(e)
			changed = changed || c
		}
	case []any:
		for i, e := range x {
			var c bool
			x[i], c = fb.loopbackOnly(e)
			changed = changed || c
		}
	case string:
		if strings.Contains(strings.ToLower(x), "http") {
			return fb.responseURL(), true
		}
		inner, ok := decodeJSON([]byte(x))
		if !ok {
			return x, false
		}
		if clean, c := fb.loopbackOnly(inner); c {
			b, _ := json.Marshal(clean)
			return string(b), true
		}
	}
	return v, changed
}

// minPoison is the shortest fuzzed text searched for in requests; shorter
// strings turn up in legitimate identities by chance.
const minPoison = 8

// remember records which strings of in must not, and which may, reach
// Slack lookups and Cloudflare URLs.
func (fb *fuzzBot) remember(in fuzzInput) {
	var m inputMarks
	if in.kind%kindCount < kindRawPayload {
		for _, s := range []string{in.text, in.value, in.actionID} {
			if target, ok := parsedTarget(s); ok {
				m.legit = append(m.legit, target)
			} else if len(s) >= minPoison {
				m.poison = append(m.poison, s)
			}
		}
	}
	m.legit = append(m.legit, in.userID, in.channelID)
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.recent = append(fb.recent, m)
	if len(fb.recent) > recentInputs {
		fb.recent = fb.recent[len(fb.recent)-recentInputs:]
	}
}

// parsedTarget returns the canonical target s names, if it names one.
func parsedTarget(s string) (string, bool) {
	cmd, err := bot.ParseCommand(s)
	if err != nil || cmd.Help {
		return "", false
	}
	return cmd.Target.Value, true
}

// leaked returns the recent fuzzed text that v contains, or "". Text that
// is part of a string allowed there (a seeded identity, a canonical
// target, an actor's ID) proves nothing and is skipped.
func (fb *fuzzBot) leaked(v string) string {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	for _, m := range fb.recent {
		for _, p := range m.poison {
			if strings.Contains(v, p) && !fb.allowedLocked(p) {
				return p
			}
		}
	}
	return ""
}

func (fb *fuzzBot) allowedLocked(p string) bool {
	for _, s := range fb.fixtures {
		if strings.Contains(s, p) {
			return true
		}
	}
	for _, m := range fb.recent {
		for _, s := range m.legit {
			if strings.Contains(s, p) {
				return true
			}
		}
	}
	return false
}

// checkLookups checks the Slack lookups made since the last check.
func (fb *fuzzBot) checkLookups(t *testing.T) {
	fb.mu.Lock()
	lookups := fb.lookups
	fb.lookups = nil
	fb.mu.Unlock()
	for _, c := range lookups {
		for k, vs := range c.form {
			if k == "token" {
				continue
			}
			for _, v := range vs {
				if p := fb.leaked(v); p != "" {
					t.Errorf("fuzzed text %.200q reached Slack: %s %s=%.300q", p, c.method, k, v)
				}
			}
		}
	}
}

// checkCloudflare checks the Cloudflare requests made since the last
// check: their paths hold only the account and canonical user IDs, and
// no fuzzed text is in a path or query.
func (fb *fuzzBot) checkCloudflare(t *testing.T) {
	n := fb.cfSrv.RequestCount()
	if n == fb.cfSeen {
		return
	}
	reqs := fb.cfSrv.Requests()[fb.cfSeen:]
	fb.cfSeen = n
	for _, r := range reqs {
		variable, problem := cloudflarePathVariables(r.Path)
		if problem != "" {
			t.Errorf("Cloudflare request %s %s: %s", r.Method, r.Path, problem)
		}
		for _, vs := range r.Query {
			variable = append(variable, vs...)
		}
		for _, v := range variable {
			if p := fb.leaked(v); p != "" {
				t.Errorf("fuzzed text %.200q reached Cloudflare: %s %.300s?%.300s", p, r.Method, r.Path, r.Query.Encode())
			}
		}
	}
}

// cloudflarePathVariables returns the parts of a Cloudflare path that come
// from input, and what is wrong with the path, if anything.
func cloudflarePathVariables(escaped string) ([]string, string) {
	path, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, "path does not unescape"
	}
	segs := strings.Split(strings.TrimPrefix(path, cfapitest.BasePath+"/"), "/")
	switch {
	case len(segs) == 3 && segs[0] == "user" && segs[1] == "tokens" && segs[2] == "verify":
		return nil, ""
	case len(segs) < 4 || segs[0] != "accounts" || segs[1] != accountID:
		return segs, "not under the account"
	case len(segs) == 4 && segs[2] == "tokens" && segs[3] == "verify",
		len(segs) == 4 && segs[2] == "access" && segs[3] == "users":
		return nil, ""
	case segs[2] == "zt_risk_scoring" && (len(segs) == 4 || len(segs) == 5 && segs[4] == "reset"):
		if id, err := uuid.Parse(segs[3]); err != nil || id.String() != segs[3] {
			return segs[3:4], "user segment is not a canonical UUID"
		}
		return segs[3:4], ""
	}
	return segs, "not a path the bot should use"
}

// fixtureStrings returns every string of the envelope templates and the
// seeded identities: fuzzed text that is part of one of them proves
// nothing when it turns up in a request.
func fixtureStrings() []string {
	out := []string{accountID, aliceID, bobID, aliceEmail, bobEmail, analyst, lead, lead2, stranger, leadsGroup,
		channelOps, channelOther, channelAudit, "U0ALICE", "analyst@example.com", "lead@example.com", "lead2@example.com",
		"stranger@example.com", slackfake.BotUserID, slackfake.TeamID}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				out = append(out, k)
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			out = append(out, x)
		}
	}
	for _, tmpl := range []string{slashEnvelopeTemplate, blockActionsEnvelopeTemplate, viewSubmissionEnvelopeTemplate} {
		var v any
		_ = json.Unmarshal([]byte(tmpl), &v)
		walk(v)
	}
	return out
}

// collectingTB is the testing.TB the fakes of a fuzz run get. Their
// failures come from server goroutines while an input runs, when
// testing.F may not be failed; they are collected and reported by the
// input's own *testing.T.
type collectingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (c *collectingTB) Helper() {}

func (c *collectingTB) Error(args ...any) { c.add(fmt.Sprint(args...)) }

func (c *collectingTB) Errorf(format string, args ...any) { c.add(fmt.Sprintf(format, args...)) }

func (c *collectingTB) add(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, msg)
}

func (c *collectingTB) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := c.errs
	c.errs = nil
	return errs
}

// logTail keeps the end of the bot's log, for failure messages, and the
// lines of handler panics: a fuzz run logs far more than fits in memory.
type logTail struct {
	mu     sync.Mutex
	tail   []byte
	panics []string
}

const logTailSize = 32 << 10

// Write takes one log line: zerolog writes each line in one call.
func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if bytes.Contains(p, []byte(`"handler panicked"`)) {
		l.panics = append(l.panics, string(p))
	}
	l.tail = append(l.tail, p...)
	if len(l.tail) > logTailSize {
		l.tail = append(l.tail[:0], l.tail[len(l.tail)-logTailSize/2:]...)
	}
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.tail)
}

func (l *logTail) takePanics() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.panics
	l.panics = nil
	return p
}
