package slackfake

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

type trigger struct {
	issued time.Time
	used   bool
}

type storedView struct {
	OpenedView
	fields map[string]any // the stored view object
}

func (v *storedView) snapshot() OpenedView {
	out := v.OpenedView
	out.View = slices.Clone(v.View)
	return out
}

// issueTriggerLocked records a trigger_id as handed to the bot now. An
// explicit id (from a test) is registered as is.
func (s *Server) issueTriggerLocked(id string) string {
	if id == "" {
		id = fmt.Sprintf("%d.%d.%s", 1000000000000+s.nextSeqLocked(), 1000000000002, strings.ReplaceAll(uuid.NewString(), "-", ""))
	}
	s.triggers[id] = &trigger{issued: s.now()}
	return id
}

func (s *Server) viewsOpen(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	triggerID := req.param("trigger_id")
	if code := s.checkTriggerLocked(triggerID); code != "" {
		return errReply(code)
	}
	var view map[string]any
	if err := json.Unmarshal([]byte(req.param("view")), &view); err != nil || view == nil {
		return errReply("invalid_arguments", "[ERROR] missing required field: view [json-pointer:/view]")
	}
	if msgs := checkModal(view); len(msgs) > 0 {
		return errReply("invalid_arguments", msgs...)
	}
	s.triggers[triggerID].used = true
	stored := s.storeViewLocked(view, triggerID)
	return okReply(map[string]any{"view": stored.fields})
}

// checkTriggerLocked enforces that a trigger_id is one the fake issued,
// not yet exchanged, and younger than TriggerTTL by the fake's clock.
func (s *Server) checkTriggerLocked(id string) string {
	t, ok := s.triggers[id]
	switch {
	case id == "":
		return "invalid_arguments"
	case !ok:
		return "invalid_trigger_id"
	case t.used:
		return "exchanged_trigger_id"
	case s.now().Sub(t.issued) > TriggerTTL:
		return "expired_trigger_id"
	}
	return ""
}

func checkModal(view map[string]any) []string {
	var p problems
	if view["type"] != "modal" {
		p.add("/view/type", "must be modal")
	}
	checkTextObject(&p, "/view/title", view["title"], maxModalTitleChars, true)
	for _, key := range []string{"submit", "close"} {
		if v, ok := view[key]; ok {
			checkTextObject(&p, "/view/"+key, v, maxModalButtonChars, true)
		}
	}
	if id, ok := view["callback_id"].(string); ok {
		p.maxChars("/view/callback_id", id, maxCallbackIDChars)
	}
	if pm, ok := view["private_metadata"].(string); ok {
		p.maxChars("/view/private_metadata", pm, maxPrivateMetadataChars)
	}
	blocks, _ := json.Marshal(view["blocks"])
	if _, ok := view["blocks"].([]any); !ok {
		p.add("/view/blocks", "missing required field: blocks")
	} else if _, msgs := checkBlocks(blocks, "/view/blocks", maxModalBlocks); len(msgs) > 0 {
		p = append(p, msgs...)
	}
	if hasInputBlock(view["blocks"]) && view["submit"] == nil {
		p.add("/view/submit", "submit is required when an input block is present")
	}
	return p
}

func hasInputBlock(v any) bool {
	blocks, _ := v.([]any)
	for _, b := range blocks {
		if m, ok := b.(map[string]any); ok && m["type"] == "input" {
			return true
		}
	}
	return false
}

// storeViewLocked completes the view the way Slack echoes it back.
func (s *Server) storeViewLocked(view map[string]any, triggerID string) *storedView {
	id := s.nextIDLocked("V")
	raw, _ := json.Marshal(view["blocks"])
	view["blocks"] = json.RawMessage(s.normalizeBlocksLocked(raw))
	view["id"] = id
	view["team_id"] = TeamID
	view["state"] = map[string]any{"values": map[string]any{}}
	view["hash"] = fmt.Sprintf("%d.%s", s.now().Unix(), strings.ReplaceAll(uuid.NewString(), "-", "")[:8])
	view["root_view_id"] = id
	view["previous_view_id"] = nil
	view["app_id"] = AppID
	view["app_installed_team_id"] = TeamID
	view["bot_id"] = BotID
	for _, key := range []string{"callback_id", "private_metadata", "external_id"} {
		if _, ok := view[key]; !ok {
			view[key] = ""
		}
	}
	for _, key := range []string{"clear_on_close", "notify_on_close"} {
		if _, ok := view[key]; !ok {
			view[key] = false
		}
	}
	encoded, _ := json.Marshal(view)
	// Re-decode so the stored map holds plain JSON values, not RawMessages.
	var fields map[string]any
	_ = json.Unmarshal(encoded, &fields)

	title, _ := fields["title"].(map[string]any)
	titleText, _ := title["text"].(string)
	callbackID, _ := fields["callback_id"].(string)
	pm, _ := fields["private_metadata"].(string)
	v := &storedView{
		OpenedView: OpenedView{
			ID: id, TriggerID: triggerID, CallbackID: callbackID, PrivateMetadata: pm,
			Title: titleText, View: encoded, At: time.Now(),
		},
		fields: fields,
	}
	s.views = append(s.views, v)
	s.notifyLocked()
	return v
}

// viewsUpdate replaces an open view, as Slack's views.update does: the view
// keeps its id, gets a new hash, and a stale hash is refused.
func (s *Server) viewsUpdate(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := s.findViewLocked(req.param("view_id"))
	if stored == nil {
		return errReply("not_found")
	}
	if hash := req.param("hash"); hash != "" && hash != stored.fields["hash"] {
		return errReply("hash_conflict")
	}
	var view map[string]any
	if err := json.Unmarshal([]byte(req.param("view")), &view); err != nil || view == nil {
		return errReply("invalid_arguments", "[ERROR] missing required field: view [json-pointer:/view]")
	}
	if msgs := checkModal(view); len(msgs) > 0 {
		return errReply("invalid_arguments", msgs...)
	}
	updated := s.storeViewLocked(view, stored.TriggerID)
	// storeViewLocked appended a new view; fold it back under the old id.
	s.views = s.views[:len(s.views)-1]
	updated.ID = stored.ID
	updated.fields["id"], updated.fields["root_view_id"] = stored.ID, stored.ID
	updated.View, _ = json.Marshal(updated.fields)
	updated.Updates = stored.Updates + 1
	*stored = *updated
	s.notifyLocked()
	return okReply(map[string]any{"view": stored.fields})
}

func (s *Server) findViewLocked(id string) *storedView {
	for _, v := range s.views {
		if v.ID == id {
			return v
		}
	}
	return nil
}
