package slackfake

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

type channelState struct {
	Channel
	im bool // a DM opened by posting to a user ID
}

type storedMessage struct {
	Message
	history []json.RawMessage // every blocks version, oldest first, for stale clicks
}

func (m *storedMessage) snapshot() Message {
	out := m.Message
	out.Blocks = slices.Clone(m.Blocks)
	return out
}

// content is the text/blocks part of a chat.* request.
type content struct {
	text                 string
	hasText, hasBlocks   bool
	blocks               json.RawMessage
	hasOtherVisibleParts bool // attachments
}

// parseContent applies Slack's message limits. requireSome is false for
// chat.update, where omitted fields keep their old value.
func parseContent(req *apiRequest, requireSome bool) (content, *reply) {
	c := content{
		text:                 req.param("text"),
		hasText:              req.has("text"),
		hasBlocks:            hasBlocksArg(req),
		hasOtherVisibleParts: req.param("attachments") != "" && req.param("attachments") != "[]",
	}
	empty := c.text == "" && (!c.hasBlocks || isEmptyBlocks([]byte(req.param("blocks")))) && !c.hasOtherVisibleParts
	if requireSome && empty {
		rep := errReply("no_text")
		return c, &rep
	}
	if utf8.RuneCountInString(c.text) > maxMessageTextChars {
		rep := errReply("msg_too_long")
		return c, &rep
	}
	if c.hasBlocks {
		raw := []byte(req.param("blocks"))
		if code, msgs := checkBlocks(raw, "/blocks", maxMessageBlocks); code != "" {
			rep := errReply(code, msgs...)
			return c, &rep
		}
		c.blocks = raw
	}
	return c, nil
}

// hasBlocksArg treats an empty or null blocks argument as absent; slack-go
// sends "blocks":null in response_url bodies without blocks.
func hasBlocksArg(req *apiRequest) bool {
	v := strings.TrimSpace(req.param("blocks"))
	return req.has("blocks") && v != "" && v != "null"
}

// postableChannelLocked resolves a channel argument the bot wants to write
// to. A user ID opens (or reuses) the bot's DM with that user, as Slack does.
func (s *Server) postableChannelLocked(id string) (*channelState, *reply) {
	if u, ok := s.users[id]; ok && !u.Deleted && (strings.HasPrefix(id, "U") || strings.HasPrefix(id, "W")) {
		dm := "D" + id[1:]
		if _, ok := s.channels[dm]; !ok {
			s.channels[dm] = &channelState{Channel: Channel{ID: dm, BotIsMember: true, Private: true}, im: true}
		}
		id = dm
	}
	ch, rep := s.visibleChannelLocked(id)
	if rep != nil {
		return nil, rep
	}
	switch {
	case ch.Archived:
		r := errReply("is_archived")
		return nil, &r
	case !ch.BotIsMember:
		r := errReply("not_in_channel")
		return nil, &r
	}
	return ch, nil
}

// visibleChannelLocked finds a channel the bot can see: private channels
// are invisible to non-members.
func (s *Server) visibleChannelLocked(id string) (*channelState, *reply) {
	ch, ok := s.channels[id]
	if !ok || (ch.Private && !ch.BotIsMember) {
		r := errReply("channel_not_found")
		return nil, &r
	}
	return ch, nil
}

func (s *Server) findMessageLocked(channel, ts string) *storedMessage {
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

// nextTSLocked returns a message ts: unique and increasing, shaped like
// Slack's "1700000000.000100".
func (s *Server) nextTSLocked() string {
	micros := int64(s.nextSeqLocked()) * 100
	return fmt.Sprintf("%d.%06d", 1700000000+micros/1_000_000, micros%1_000_000)
}

func (s *Server) nextIDLocked(prefix string) string {
	return fmt.Sprintf("%s%08X", prefix, s.nextSeqLocked())
}

func (s *Server) normalizeBlocksLocked(raw []byte) json.RawMessage {
	if raw == nil {
		return nil
	}
	return normalizeBlocks(raw, func() string { return s.nextIDLocked("fk") })
}

func (s *Server) chatPostMessage(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, rep := s.postableChannelLocked(req.param("channel"))
	if rep != nil {
		return *rep
	}
	if rep := s.cfg.channelLimit.checkLocked(ch.ID); rep != nil {
		return *rep
	}
	c, rep := parseContent(req, true)
	if rep != nil {
		return *rep
	}
	threadTS, rep := s.threadRootLocked(ch.ID, req.param("thread_ts"))
	if rep != nil {
		return *rep
	}
	m := &storedMessage{Message: Message{
		Channel:  ch.ID,
		TS:       s.nextTSLocked(),
		ThreadTS: threadTS,
		Text:     c.text,
		Blocks:   s.normalizeBlocksLocked(c.blocks),
	}}
	m.history = append(m.history, m.Blocks)
	s.messages = append(s.messages, m)
	s.cfg.channelLimit.postedLocked(ch.ID)
	s.notifyLocked()
	return okReply(map[string]any{"channel": m.Channel, "ts": m.TS, "message": wireMessage(m.Message)})
}

// threadRootLocked validates thread_ts; a reply to a reply lands in the
// parent's thread, as in Slack.
func (s *Server) threadRootLocked(channel, threadTS string) (string, *reply) {
	if threadTS == "" {
		return "", nil
	}
	parent := s.findMessageLocked(channel, threadTS)
	if parent == nil || parent.Deleted {
		r := errReply("thread_not_found")
		return "", &r
	}
	if parent.ThreadTS != "" {
		return parent.ThreadTS, nil
	}
	return parent.TS, nil
}

func (s *Server) chatUpdate(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, rep := s.visibleChannelLocked(req.param("channel"))
	if rep != nil {
		return *rep
	}
	if ch.Archived {
		return errReply("is_archived")
	}
	m := s.findMessageLocked(ch.ID, req.param("ts"))
	if m == nil || m.Deleted {
		return errReply("message_not_found")
	}
	c, rep := parseContent(req, true)
	if rep != nil {
		return *rep
	}
	// Slack keeps the old text or blocks when an update omits them.
	if c.hasText {
		m.Text = c.text
	}
	if c.hasBlocks {
		m.Blocks = s.normalizeBlocksLocked(c.blocks)
		m.history = append(m.history, m.Blocks)
	}
	m.Updates++
	s.notifyLocked()
	return okReply(map[string]any{"channel": m.Channel, "ts": m.TS, "text": m.Text, "message": wireMessage(m.Message)})
}

func (s *Server) chatDelete(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, rep := s.visibleChannelLocked(req.param("channel"))
	if rep != nil {
		return *rep
	}
	m := s.findMessageLocked(ch.ID, req.param("ts"))
	if m == nil || m.Deleted {
		return errReply("message_not_found")
	}
	m.Deleted = true
	s.notifyLocked()
	return okReply(map[string]any{"channel": m.Channel, "ts": m.TS})
}

func (s *Server) chatPostEphemeral(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, rep := s.postableChannelLocked(req.param("channel"))
	if rep != nil {
		return *rep
	}
	user, ok := s.users[req.param("user")]
	if !ok || user.Deleted {
		return errReply("user_not_found")
	}
	c, rep := parseContent(req, true)
	if rep != nil {
		return *rep
	}
	e := Ephemeral{
		Channel:  ch.ID,
		User:     user.ID,
		TS:       s.nextTSLocked(),
		ThreadTS: req.param("thread_ts"),
		Text:     c.text,
		Blocks:   s.normalizeBlocksLocked(c.blocks),
	}
	s.ephemerals = append(s.ephemerals, e)
	s.notifyLocked()
	return okReply(map[string]any{"message_ts": e.TS})
}

func (s *Server) chatGetPermalink(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, rep := s.visibleChannelLocked(req.param("channel"))
	if rep != nil {
		return *rep
	}
	m := s.findMessageLocked(ch.ID, req.param("message_ts"))
	if m == nil || m.Deleted {
		return errReply("message_not_found")
	}
	link := fmt.Sprintf("https://%s.slack.com/archives/%s/p%s", TeamDomain, m.Channel, strings.ReplaceAll(m.TS, ".", ""))
	if m.ThreadTS != "" {
		link += fmt.Sprintf("?thread_ts=%s&cid=%s", m.ThreadTS, m.Channel)
	}
	return okReply(map[string]any{"channel": m.Channel, "permalink": link})
}

func (s *Server) usersInfo(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[req.param("user")]
	if !ok {
		return errReply("user_not_found")
	}
	profile := map[string]any{"real_name": u.RealName, "display_name": u.Name}
	// Slack leaves the email out without users:read.email, and bots have none.
	if s.cfg.emailScope && !u.IsBot && u.Email != "" {
		profile["email"] = u.Email
	}
	user := map[string]any{
		"id":        u.ID,
		"team_id":   TeamID,
		"name":      u.Name,
		"real_name": u.RealName,
		"deleted":   u.Deleted,
		"is_bot":    u.IsBot,
		"profile":   profile,
	}
	return okReply(map[string]any{"user": user})
}

func (s *Server) usergroupsUsersList(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, ok := s.groups[req.param("usergroup")]
	if !ok {
		return errReply("no_such_subteam")
	}
	return okReply(map[string]any{"users": slices.Clone(members)})
}

func (s *Server) conversationsInfo(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, rep := s.visibleChannelLocked(req.param("channel"))
	if rep != nil {
		return *rep
	}
	return okReply(map[string]any{"channel": map[string]any{
		"id":          ch.ID,
		"name":        ch.Name,
		"is_channel":  !ch.im && !ch.Private,
		"is_group":    !ch.im && ch.Private,
		"is_im":       ch.im,
		"is_private":  ch.Private,
		"is_archived": ch.Archived,
		"is_member":   ch.BotIsMember,
	}})
}

func (s *Server) authTest(*apiRequest) reply {
	return okReply(map[string]any{
		"url":                   fmt.Sprintf("https://%s.slack.com/", TeamDomain),
		"team":                  TeamName,
		"user":                  BotUserName,
		"team_id":               TeamID,
		"user_id":               BotUserID,
		"bot_id":                BotID,
		"is_enterprise_install": false,
	})
}

func (s *Server) appsConnectionsOpen(*apiRequest) reply {
	ticket := uuid.NewString()
	s.mu.Lock()
	s.tickets[ticket] = true
	s.mu.Unlock()
	wsURL := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link/?ticket=" + ticket + "&app_id=" + AppID
	return okReply(map[string]any{"url": wsURL})
}

// wireMessage is a stored message as Slack returns it from chat.* methods
// and puts it in block_actions payloads.
func wireMessage(m Message) map[string]any {
	out := map[string]any{
		"user":   BotUserID,
		"type":   "message",
		"ts":     m.TS,
		"bot_id": BotID,
		"app_id": AppID,
		"text":   m.Text,
		"team":   TeamID,
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		out["blocks"] = json.RawMessage(m.Blocks)
	}
	return out
}
