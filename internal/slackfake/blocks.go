package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Slack's documented limits (api.slack.com/reference/block-kit and the
// chat.postMessage / views.open method pages).
const (
	maxMessageTextChars     = 40000
	maxMessageBlocks        = 50
	maxModalBlocks          = 100
	maxBlockIDChars         = 255
	maxActionIDChars        = 255
	maxButtonValueChars     = 2000
	maxButtonTextChars      = 75
	maxButtonURLChars       = 3000
	maxSectionTextChars     = 3000
	maxSectionFields        = 10
	maxSectionFieldChars    = 2000
	maxHeaderTextChars      = 150
	maxActionsElements      = 25
	maxContextElements      = 10
	maxInputLabelChars      = 2000
	maxModalTitleChars      = 24
	maxModalButtonChars     = 24
	maxCallbackIDChars      = 255
	maxPrivateMetadataChars = 3000
)

var knownBlockTypes = map[string]bool{
	"actions": true, "context": true, "divider": true, "file": true, "header": true,
	"image": true, "input": true, "markdown": true, "rich_text": true, "section": true,
	"table": true, "video": true, "context_actions": true,
}

// problems collects Slack-style validation messages, e.g.
// "[ERROR] must be less than 2001 characters [json-pointer:/blocks/1/elements/0/value]".
type problems []string

func (p *problems) add(pointer, format string, args ...any) {
	*p = append(*p, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, args...), pointer))
}

func (p *problems) maxChars(pointer, s string, limit int) {
	if utf8.RuneCountInString(s) > limit {
		p.add(pointer, "must be less than %d characters", limit+1)
	}
}

// checkBlocks validates a blocks argument. It returns the Slack error code
// ("" when valid) and the messages Slack puts in response_metadata.
func checkBlocks(raw []byte, pointer string, maxBlocks int) (code string, msgs []string) {
	var blocks []any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "invalid_blocks_format", []string{fmt.Sprintf("[ERROR] %v [json-pointer:%s]", err, pointer)}
	}
	var p problems
	if len(blocks) > maxBlocks {
		p.add(pointer, "no more than %d items allowed", maxBlocks)
	}
	seenIDs := map[string]bool{}
	for i, b := range blocks {
		at := pointer + "/" + strconv.Itoa(i)
		block, ok := b.(map[string]any)
		if !ok {
			p.add(at, "must be an object")
			continue
		}
		checkBlock(&p, at, block, seenIDs)
	}
	if len(p) > 0 {
		return "invalid_blocks", p
	}
	return "", nil
}

func checkBlock(p *problems, at string, block map[string]any, seenIDs map[string]bool) {
	typ, _ := block["type"].(string)
	switch {
	case typ == "":
		p.add(at, "missing required field: type")
		return
	case !knownBlockTypes[typ]:
		p.add(at+"/type", "unsupported type %q", typ)
		return
	}
	if id, ok := block["block_id"].(string); ok {
		p.maxChars(at+"/block_id", id, maxBlockIDChars)
		if seenIDs[id] {
			p.add(at+"/block_id", "duplicate block_id %q", id)
		}
		seenIDs[id] = true
	}
	switch typ {
	case "section":
		checkSection(p, at, block)
	case "header":
		checkTextObject(p, at+"/text", block["text"], maxHeaderTextChars, true)
	case "actions":
		checkElementCount(p, at+"/elements", block["elements"], maxActionsElements)
	case "context":
		checkElementCount(p, at+"/elements", block["elements"], maxContextElements)
	case "input":
		checkTextObject(p, at+"/label", block["label"], maxInputLabelChars, true)
		if _, ok := block["element"].(map[string]any); !ok {
			p.add(at+"/element", "missing required field: element")
		}
	}
	walkElements(p, at, block)
}

func checkSection(p *problems, at string, block map[string]any) {
	text, hasText := block["text"]
	fields, hasFields := block["fields"].([]any)
	if !hasText && !hasFields {
		p.add(at, "must provide either text or fields")
	}
	if hasText {
		checkTextObject(p, at+"/text", text, maxSectionTextChars, false)
	}
	if len(fields) > maxSectionFields {
		p.add(at+"/fields", "no more than %d items allowed", maxSectionFields)
	}
	for i, f := range fields {
		checkTextObject(p, fmt.Sprintf("%s/fields/%d", at, i), f, maxSectionFieldChars, false)
	}
}

func checkElementCount(p *problems, at string, v any, limit int) {
	elements, _ := v.([]any)
	switch {
	case len(elements) == 0:
		p.add(at, "must provide at least 1 item")
	case len(elements) > limit:
		p.add(at, "no more than %d items allowed", limit)
	}
}

// checkTextObject validates a composition text object.
func checkTextObject(p *problems, at string, v any, limit int, plainOnly bool) {
	obj, ok := v.(map[string]any)
	if !ok {
		p.add(at, "must be a text object")
		return
	}
	typ, _ := obj["type"].(string)
	if typ != "plain_text" && (plainOnly || typ != "mrkdwn") {
		want := "plain_text or mrkdwn"
		if plainOnly {
			want = "plain_text"
		}
		p.add(at+"/type", "must be %s", want)
	}
	text, _ := obj["text"].(string)
	if text == "" {
		p.add(at+"/text", "must be more than 0 characters")
	}
	p.maxChars(at+"/text", text, limit)
}

// walkElements checks every interactive element inside v, wherever it is
// nested (actions elements, section accessories, input elements).
func walkElements(p *problems, at string, v any) {
	switch node := v.(type) {
	case map[string]any:
		if id, ok := node["action_id"]; ok {
			s, _ := id.(string)
			p.maxChars(at+"/action_id", s, maxActionIDChars)
		}
		if node["type"] == "button" {
			checkButton(p, at, node)
		}
		for k, child := range node {
			walkElements(p, at+"/"+k, child)
		}
	case []any:
		for i, child := range node {
			walkElements(p, at+"/"+strconv.Itoa(i), child)
		}
	}
}

func checkButton(p *problems, at string, button map[string]any) {
	checkTextObject(p, at+"/text", button["text"], maxButtonTextChars, true)
	if v, ok := button["value"].(string); ok {
		p.maxChars(at+"/value", v, maxButtonValueChars)
	}
	if u, ok := button["url"].(string); ok {
		p.maxChars(at+"/url", u, maxButtonURLChars)
	}
	if style, ok := button["style"]; ok && style != "primary" && style != "danger" {
		p.add(at+"/style", "must be one of primary, danger")
	}
}

// isEmptyBlocks reports whether a blocks argument carries no blocks.
func isEmptyBlocks(raw []byte) bool {
	var blocks []any
	return json.Unmarshal(raw, &blocks) == nil && len(blocks) == 0
}

// normalizeBlocks compacts valid blocks JSON and, like Slack, gives every
// block a block_id and every interactive element an action_id when the
// sender left them out. next yields fresh ids.
func normalizeBlocks(raw []byte, next func() string) json.RawMessage {
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return compact(raw)
	}
	changed := false
	for _, b := range blocks {
		if _, ok := b["block_id"]; !ok {
			b["block_id"] = next()
			changed = true
		}
		for _, el := range interactiveElements(b) {
			if _, ok := el["action_id"]; !ok {
				el["action_id"] = next()
				changed = true
			}
		}
	}
	if !changed {
		return compact(raw)
	}
	out, err := json.Marshal(blocks)
	if err != nil {
		return compact(raw)
	}
	return out
}

func interactiveElements(block map[string]any) []map[string]any {
	var out []map[string]any
	if elements, ok := block["elements"].([]any); ok && block["type"] == "actions" {
		for _, e := range elements {
			if el, ok := e.(map[string]any); ok {
				out = append(out, el)
			}
		}
	}
	if acc, ok := block["accessory"].(map[string]any); ok && acc["type"] != "image" {
		out = append(out, acc)
	}
	if el, ok := block["element"].(map[string]any); ok && block["type"] == "input" {
		out = append(out, el)
	}
	return out
}

func compact(raw []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return append(json.RawMessage{}, raw...)
	}
	return buf.Bytes()
}

// findAction looks for the element with actionID in blocks, preferring one
// whose value equals value when several share the action_id.
func findAction(blocks json.RawMessage, actionID, value string) (element map[string]any, blockID string, ok bool) {
	var list []map[string]any
	if json.Unmarshal(blocks, &list) != nil {
		return nil, "", false
	}
	for _, b := range list {
		id, _ := b["block_id"].(string)
		for _, el := range findByActionID(b, actionID) {
			if element == nil || (value != "" && el["value"] == value) {
				element, blockID = el, id
			}
		}
	}
	return element, blockID, element != nil
}

func findByActionID(v any, actionID string) []map[string]any {
	var out []map[string]any
	switch node := v.(type) {
	case map[string]any:
		if node["action_id"] == actionID {
			out = append(out, node)
		}
		for _, child := range node {
			out = append(out, findByActionID(child, actionID)...)
		}
	case []any:
		for _, child := range node {
			out = append(out, findByActionID(child, actionID)...)
		}
	}
	return out
}
