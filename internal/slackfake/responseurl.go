package slackfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// responseTarget is what a response_url answers: the user who acted, where,
// and for block actions the message they clicked.
type responseTarget struct {
	userID, channelID, messageTS string
}

func (s *Server) newResponseURLLocked(t responseTarget) string {
	id := strings.ReplaceAll(uuid.NewString(), "-", "")
	s.responseURLs[id] = t
	return s.srv.URL + "/response/" + id
}

// serveResponseURL takes the JSON bodies apps post to a response_url. The
// calls are recorded under the method name "response_url", so FailNext,
// RateLimitNext and the hook apply to them too.
func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	const method = "response_url"
	at := time.Now()
	req := &apiRequest{form: url.Values{}}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	var rep reply
	switch {
	case r.Method != http.MethodPost:
		rep = errReply("invalid_method")
		rep.status = http.StatusMethodNotAllowed
	case err != nil:
		rep = errReply("invalid_payload")
		rep.status = http.StatusBadRequest
	case decodeJSONBody(body, req) != "" || req.json == nil:
		rep = errReply("invalid_payload")
		rep.status = http.StatusBadRequest
	default:
		rep = s.dispatch(method, req, func() reply {
			return s.acceptResponsePost(r.URL.String(), strings.TrimPrefix(r.URL.Path, "/response/"), body, req, at)
		})
	}
	s.respond(w, Call{Method: method, Form: req.form, JSON: req.json, At: at}, rep)
}

// acceptResponsePost applies a response_url post the way Slack shows it:
// replacing or deleting the original message, posting in the channel, or
// showing an ephemeral message to the user.
func (s *Server) acceptResponsePost(path, id string, body []byte, req *apiRequest, at time.Time) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	target, ok := s.responseURLs[id]
	if !ok {
		rep := errReply("expired_url")
		rep.status = http.StatusNotFound
		return rep
	}
	post := ResponsePost{
		URL:             s.srv.URL + path,
		UserID:          target.userID,
		ChannelID:       target.channelID,
		MessageTS:       target.messageTS,
		Text:            req.param("text"),
		ResponseType:    req.param("response_type"),
		ThreadTS:        req.param("thread_ts"),
		ReplaceOriginal: req.json["replace_original"] == true,
		DeleteOriginal:  req.json["delete_original"] == true,
		Body:            bytes.Clone(body),
		At:              at,
	}
	var c content
	if !post.DeleteOriginal {
		var rep *reply
		if c, rep = parseContent(req, true); rep != nil {
			rep.status = http.StatusBadRequest
			return *rep
		}
		post.Blocks = s.normalizeBlocksLocked(c.blocks)
	}
	s.applyResponsePostLocked(&post, target)
	s.responsePosts = append(s.responsePosts, post)
	s.notifyLocked()
	return okReply(nil)
}

func (s *Server) applyResponsePostLocked(post *ResponsePost, target responseTarget) {
	var original *storedMessage
	if target.messageTS != "" {
		original = s.findMessageLocked(target.channelID, target.messageTS)
	}
	switch {
	case post.DeleteOriginal && original != nil:
		original.Deleted = true
	case post.ReplaceOriginal && original != nil:
		// A replacement is a whole new message body: blocks left out are gone.
		original.Text = post.Text
		original.Blocks = slices.Clone(post.Blocks)
		original.history = append(original.history, original.Blocks)
		original.Updates++
	case post.ResponseType == "in_channel":
		threadTS, rep := s.threadRootLocked(target.channelID, post.ThreadTS)
		if rep != nil {
			threadTS = ""
		}
		s.messages = append(s.messages, &storedMessage{
			Message: Message{Channel: target.channelID, TS: s.nextTSLocked(), ThreadTS: threadTS, Text: post.Text, Blocks: post.Blocks},
			history: []json.RawMessage{post.Blocks},
		})
	default:
		post.Ephemeral = true
	}
}
