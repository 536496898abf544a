package slackfake

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// DefaultCommand is the slash command SendSlashCommand uses when none is given.
const DefaultCommand = "/risk-reset"

// SlashCommand is what a user typed. Empty names are filled from the
// directory; an empty TriggerID gets a fresh one.
type SlashCommand struct {
	Command                string
	UserID, UserName       string
	ChannelID, ChannelName string
	Text                   string
	TriggerID              string
}

// BlockAction is a click on an element of a stored message. Value defaults
// to the element's own value.
type BlockAction struct {
	UserID, ChannelID, MessageTS, ActionID, Value string
}

// ViewSubmission submits a modal. With ViewID, the view opened by
// views.open is submitted and Values must name its inputs; CallbackID and
// PrivateMetadata, when set, override the view's. Values maps block_id to
// action_id to the typed value.
type ViewSubmission struct {
	UserID, ViewID, CallbackID, PrivateMetadata string
	Values                                      map[string]map[string]string
}

type teamRef struct {
	ID     string `json:"id"`
	Domain string `json:"domain"`
}

type userRef struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	TeamID   string `json:"team_id"`
}

type slashPayload struct {
	Token               string `json:"token"`
	TeamID              string `json:"team_id"`
	TeamDomain          string `json:"team_domain"`
	ChannelID           string `json:"channel_id"`
	ChannelName         string `json:"channel_name"`
	UserID              string `json:"user_id"`
	UserName            string `json:"user_name"`
	Command             string `json:"command"`
	Text                string `json:"text"`
	APIAppID            string `json:"api_app_id"`
	IsEnterpriseInstall string `json:"is_enterprise_install"`
	ResponseURL         string `json:"response_url"`
	TriggerID           string `json:"trigger_id"`
}

type actionContainer struct {
	Type        string `json:"type"`
	MessageTS   string `json:"message_ts"`
	ChannelID   string `json:"channel_id"`
	IsEphemeral bool   `json:"is_ephemeral"`
}

type channelRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type actionPayload struct {
	ActionID string          `json:"action_id"`
	BlockID  string          `json:"block_id"`
	Text     json.RawMessage `json:"text,omitempty"`
	Value    string          `json:"value,omitempty"`
	Style    string          `json:"style,omitempty"`
	Type     string          `json:"type"`
	ActionTS string          `json:"action_ts"`
}

type blockActionsPayload struct {
	Type                string          `json:"type"`
	User                userRef         `json:"user"`
	APIAppID            string          `json:"api_app_id"`
	Token               string          `json:"token"`
	Container           actionContainer `json:"container"`
	TriggerID           string          `json:"trigger_id"`
	Team                teamRef         `json:"team"`
	Enterprise          *struct{}       `json:"enterprise"`
	IsEnterpriseInstall bool            `json:"is_enterprise_install"`
	Channel             channelRef      `json:"channel"`
	Message             map[string]any  `json:"message"`
	State               map[string]any  `json:"state"`
	ResponseURL         string          `json:"response_url"`
	Actions             []actionPayload `json:"actions"`
}

type viewSubmissionPayload struct {
	Type                string         `json:"type"`
	Team                teamRef        `json:"team"`
	User                userRef        `json:"user"`
	APIAppID            string         `json:"api_app_id"`
	Token               string         `json:"token"`
	TriggerID           string         `json:"trigger_id"`
	Enterprise          *struct{}      `json:"enterprise"`
	IsEnterpriseInstall bool           `json:"is_enterprise_install"`
	View                map[string]any `json:"view"`
	ResponseURLs        []any          `json:"response_urls"`
}

// SendSlashCommand delivers a slash_commands envelope and returns its id.
func (s *Server) SendSlashCommand(ctx context.Context, cmd SlashCommand) (string, error) {
	s.mu.Lock()
	if cmd.Command == "" {
		cmd.Command = DefaultCommand
	}
	if cmd.UserName == "" {
		cmd.UserName = s.userRefLocked(cmd.UserID).Name
	}
	if ch, ok := s.channels[cmd.ChannelID]; ok && cmd.ChannelName == "" {
		cmd.ChannelName = ch.Name
	}
	payload := slashPayload{
		Token:               VerificationToken,
		TeamID:              TeamID,
		TeamDomain:          TeamDomain,
		ChannelID:           cmd.ChannelID,
		ChannelName:         cmd.ChannelName,
		UserID:              cmd.UserID,
		UserName:            cmd.UserName,
		Command:             cmd.Command,
		Text:                cmd.Text,
		APIAppID:            AppID,
		IsEnterpriseInstall: "false",
		ResponseURL:         s.newResponseURLLocked(responseTarget{userID: cmd.UserID, channelID: cmd.ChannelID}),
		TriggerID:           s.issueTriggerLocked(cmd.TriggerID),
	}
	s.mu.Unlock()
	return s.sendTyped(ctx, "slash_commands", payload)
}

// SendBlockAction delivers a block_actions envelope for a click on a
// message the bot posted, carrying the message as it is now. A click on an
// element only an earlier version of the message had is a stale click and
// is delivered too; an element the message never had is ErrNoSuchAction.
func (s *Server) SendBlockAction(ctx context.Context, a BlockAction) (string, error) {
	s.mu.Lock()
	payload, err := s.blockActionLocked(a)
	s.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("send block action %s on %s/%s: %w", a.ActionID, a.ChannelID, a.MessageTS, err)
	}
	return s.sendTyped(ctx, "interactive", payload)
}

func (s *Server) blockActionLocked(a BlockAction) (blockActionsPayload, error) {
	m := s.findMessageLocked(a.ChannelID, a.MessageTS)
	if m == nil || m.Deleted {
		return blockActionsPayload{}, ErrNoSuchMessage
	}
	el, blockID, ok := findAction(m.Blocks, a.ActionID, a.Value)
	for i := len(m.history) - 1; !ok && i >= 0; i-- {
		el, blockID, ok = findAction(m.history[i], a.ActionID, a.Value)
	}
	if !ok {
		return blockActionsPayload{}, ErrNoSuchAction
	}
	action := actionPayload{ActionID: a.ActionID, BlockID: blockID, Value: a.Value, ActionTS: s.actionTSLocked()}
	action.Type, _ = el["type"].(string)
	action.Style, _ = el["style"].(string)
	if action.Value == "" {
		action.Value, _ = el["value"].(string)
	}
	if text, ok := el["text"]; ok {
		action.Text, _ = json.Marshal(text)
	}
	channelName := ""
	if ch, ok := s.channels[a.ChannelID]; ok {
		channelName = ch.Name
	}
	return blockActionsPayload{
		Type:        "block_actions",
		User:        s.userRefLocked(a.UserID),
		APIAppID:    AppID,
		Token:       VerificationToken,
		Container:   actionContainer{Type: "message", MessageTS: m.TS, ChannelID: m.Channel},
		TriggerID:   s.issueTriggerLocked(""),
		Team:        teamRef{ID: TeamID, Domain: TeamDomain},
		Channel:     channelRef{ID: m.Channel, Name: channelName},
		Message:     wireMessage(m.Message),
		State:       map[string]any{"values": map[string]any{}},
		ResponseURL: s.newResponseURLLocked(responseTarget{userID: a.UserID, channelID: m.Channel, messageTS: m.TS}),
		Actions:     []actionPayload{action},
	}, nil
}

// SendViewSubmission delivers a view_submission envelope.
func (s *Server) SendViewSubmission(ctx context.Context, v ViewSubmission) (string, error) {
	s.mu.Lock()
	payload, err := s.viewSubmissionLocked(v)
	s.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("send view submission %s: %w", v.ViewID, err)
	}
	return s.sendTyped(ctx, "interactive", payload)
}

func (s *Server) viewSubmissionLocked(v ViewSubmission) (viewSubmissionPayload, error) {
	var view map[string]any
	if v.ViewID != "" {
		stored := s.findViewLocked(v.ViewID)
		if stored == nil {
			return viewSubmissionPayload{}, ErrNoSuchView
		}
		view = cloneJSONMap(stored.fields)
	} else {
		view = s.syntheticViewLocked(v)
	}
	if v.CallbackID != "" {
		view["callback_id"] = v.CallbackID
	}
	if v.PrivateMetadata != "" {
		view["private_metadata"] = v.PrivateMetadata
	}
	values, err := stateValues(view, v.Values, v.ViewID != "")
	if err != nil {
		return viewSubmissionPayload{}, err
	}
	view["state"] = map[string]any{"values": values}
	return viewSubmissionPayload{
		Type:         "view_submission",
		Team:         teamRef{ID: TeamID, Domain: TeamDomain},
		User:         s.userRefLocked(v.UserID),
		APIAppID:     AppID,
		Token:        VerificationToken,
		TriggerID:    s.issueTriggerLocked(""),
		View:         view,
		ResponseURLs: []any{},
	}, nil
}

// syntheticViewLocked builds a modal with one plain-text input per value,
// for tests that submit a view the bot never opened.
func (s *Server) syntheticViewLocked(v ViewSubmission) map[string]any {
	id := s.nextIDLocked("V")
	blocks := []any{}
	for blockID, actions := range v.Values {
		for actionID := range actions {
			blocks = append(blocks, map[string]any{
				"type": "input", "block_id": blockID,
				"label":   map[string]any{"type": "plain_text", "text": blockID},
				"element": map[string]any{"type": "plain_text_input", "action_id": actionID},
			})
		}
	}
	return map[string]any{
		"id": id, "team_id": TeamID, "type": "modal",
		"title":  map[string]any{"type": "plain_text", "text": "Modal"},
		"submit": map[string]any{"type": "plain_text", "text": "Submit"},
		"blocks": blocks, "private_metadata": "", "callback_id": "",
		"hash": fmt.Sprintf("%d.fake", s.now().Unix()), "root_view_id": id, "previous_view_id": nil,
		"app_id": AppID, "app_installed_team_id": TeamID, "bot_id": BotID,
		"clear_on_close": false, "notify_on_close": false, "external_id": "",
	}
}

// stateValues builds view.state.values; with strict, every value must
// belong to an input of the view.
func stateValues(view map[string]any, values map[string]map[string]string, strict bool) (map[string]any, error) {
	out := map[string]any{}
	for blockID, actions := range values {
		byAction := map[string]any{}
		for actionID, value := range actions {
			typ, found := inputElementType(view, blockID, actionID)
			if !found && strict {
				return nil, fmt.Errorf("%s/%s: %w", blockID, actionID, ErrNoSuchInput)
			}
			if !found {
				typ = "plain_text_input"
			}
			byAction[actionID] = map[string]any{"type": typ, "value": value}
		}
		out[blockID] = byAction
	}
	return out, nil
}

func inputElementType(view map[string]any, blockID, actionID string) (string, bool) {
	blocks, _ := view["blocks"].([]any)
	for _, b := range blocks {
		block, _ := b.(map[string]any)
		if block["block_id"] != blockID {
			continue
		}
		el, _ := block["element"].(map[string]any)
		if el["action_id"] == actionID {
			typ, _ := el["type"].(string)
			return typ, true
		}
	}
	return "", false
}

func (s *Server) sendTyped(ctx context.Context, typ string, payload any) (string, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("encode %s payload: %w", typ, err)
	}
	id := uuid.NewString()
	frame, err := json.Marshal(envelopeFrame{EnvelopeID: id, Payload: body, Type: typ, AcceptsResponsePayload: true})
	if err != nil {
		return "", fmt.Errorf("encode %s envelope: %w", typ, err)
	}
	if err := s.deliver(ctx, frame, id, 0); err != nil {
		return "", fmt.Errorf("send %s envelope: %w", typ, err)
	}
	return id, nil
}

func (s *Server) userRefLocked(id string) userRef {
	name := strings.ToLower(id)
	if u, ok := s.users[id]; ok && u.Name != "" {
		name = u.Name
	}
	return userRef{ID: id, Username: name, Name: name, TeamID: TeamID}
}

func (s *Server) actionTSLocked() string {
	now := s.now()
	return fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
}
