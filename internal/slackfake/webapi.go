package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const maxRequestBody = 4 << 20

// apiRequest is a decoded Web API request, whatever its encoding.
type apiRequest struct {
	form            url.Values
	json            map[string]any
	token           string
	tokenFromHeader bool
}

func (r *apiRequest) param(name string) string { return r.form.Get(name) }

func (r *apiRequest) has(name string) bool { _, ok := r.form[name]; return ok }

// reply is what the fake answers; body is JSON-encoded unless raw bytes.
type reply struct {
	status int
	header http.Header
	body   any
}

func okReply(fields map[string]any) reply {
	body := map[string]any{"ok": true}
	maps.Copy(body, fields)
	return reply{status: http.StatusOK, body: body}
}

// errReply is Slack's ok:false answer; messages go to
// response_metadata.messages as Slack does for validation errors.
func errReply(code string, messages ...string) reply {
	body := map[string]any{"ok": false, "error": code}
	if len(messages) > 0 {
		body["response_metadata"] = map[string]any{"messages": messages}
	}
	return reply{status: http.StatusOK, body: body}
}

type faultKind int

const (
	faultFail faultKind = iota
	faultRateLimit
)

type fault struct {
	kind       faultKind
	slackError string
	retryAfter time.Duration
}

// FailNext makes the next call to method answer ok:false with slackError.
// Faults queued for one method are consumed in the order they were added.
// Posts to response URLs count as the method "response_url".
func (s *Server) FailNext(method, slackError string) {
	s.addFault(method, fault{kind: faultFail, slackError: slackError})
}

// RateLimitNext makes the next call to method answer HTTP 429 with a
// Retry-After header. Slack sends whole seconds, so retryAfter is rounded up
// to at least one second.
func (s *Server) RateLimitNext(method string, retryAfter time.Duration) {
	s.addFault(method, fault{kind: faultRateLimit, retryAfter: retryAfter})
}

func (s *Server) addFault(method string, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], f)
}

// SetHook installs (or, with nil, removes) a hook consulted before queued
// faults and the fake's own handling of each Web API call and of each
// response_url post (method "response_url"). It runs without the fake's
// lock, so it may call the Server.
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

func (s *Server) popFault(method string) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	queue := s.faults[method]
	if len(queue) == 0 {
		return fault{}, false
	}
	s.faults[method] = queue[1:]
	return queue[0], true
}

func (f fault) reply() reply {
	if f.kind == faultFail {
		return errReply(f.slackError)
	}
	secs := max(1, int(math.Ceil(f.retryAfter.Seconds())))
	rep := errReply("ratelimited")
	rep.status = http.StatusTooManyRequests
	rep.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	return rep
}

type apiMethod struct {
	handle  func(*Server, *apiRequest) reply
	appAuth bool // needs the app-level token instead of the bot token
}

var apiMethods = map[string]apiMethod{
	"apps.connections.open": {handle: (*Server).appsConnectionsOpen, appAuth: true},
	"auth.test":             {handle: (*Server).authTest},
	"chat.postMessage":      {handle: (*Server).chatPostMessage},
	"chat.update":           {handle: (*Server).chatUpdate},
	"chat.delete":           {handle: (*Server).chatDelete},
	"chat.postEphemeral":    {handle: (*Server).chatPostEphemeral},
	"chat.getPermalink":     {handle: (*Server).chatGetPermalink},
	"users.info":            {handle: (*Server).usersInfo},
	"usergroups.users.list": {handle: (*Server).usergroupsUsersList},
	"views.open":            {handle: (*Server).viewsOpen},
	"views.update":          {handle: (*Server).viewsUpdate},
	"conversations.info":    {handle: (*Server).conversationsInfo},
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	at := time.Now()
	req, decodeErr := decodeAPIRequest(r)
	var rep reply
	switch m, known := apiMethods[method]; {
	case decodeErr != "":
		rep = errReply(decodeErr)
	default:
		rep = s.dispatch(method, req, func() reply {
			if !known {
				return errReply("unknown_method")
			}
			if code := s.authorize(req, m.appAuth); code != "" {
				return errReply(code)
			}
			return m.handle(s, req)
		})
	}
	s.respond(w, Call{Method: method, Form: req.form, JSON: req.json, At: at}, rep)
}

// dispatch runs the hook, then queued faults, then handle.
func (s *Server) dispatch(method string, req *apiRequest, handle func() reply) reply {
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		if status, body, handled := hook(method, url.Values(maps.Clone(map[string][]string(req.form)))); handled {
			if status == 0 {
				status = http.StatusOK
			}
			return reply{status: status, body: body}
		}
	}
	if f, ok := s.popFault(method); ok {
		return f.reply()
	}
	return handle()
}

// authorize checks the token the way Slack does: the app-level token only
// opens Socket Mode connections, and must come in the Authorization header.
func (s *Server) authorize(req *apiRequest, appAuth bool) string {
	switch {
	case req.token == "":
		return "not_authed"
	case appAuth && req.token == s.cfg.appToken && !req.tokenFromHeader:
		return "invalid_auth"
	case appAuth && req.token == s.cfg.appToken, !appAuth && req.token == s.cfg.botToken:
		return ""
	case req.token == s.cfg.appToken, req.token == s.cfg.botToken:
		return "not_allowed_token_type"
	default:
		return "invalid_auth"
	}
}

// respond records the call before answering, so a client that got its
// answer always finds the call recorded.
func (s *Server) respond(w http.ResponseWriter, call Call, rep reply) {
	body := encodeBody(rep.body)
	call.Status = rep.status
	call.Error = slackErrorOf(body)
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.notifyLocked()
	s.mu.Unlock()

	for k, v := range rep.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
}

func encodeBody(body any) []byte {
	switch b := body.(type) {
	case nil:
		return []byte("{}")
	case []byte:
		return b
	case json.RawMessage:
		return b
	case string:
		return []byte(b)
	}
	out, err := json.Marshal(body)
	if err != nil {
		return fmt.Appendf(nil, `{"ok":false,"error":"fake_encoding_error: %v"}`, err)
	}
	return out
}

func slackErrorOf(body []byte) string {
	var probe struct {
		OK    *bool  `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &probe) != nil || probe.OK == nil || *probe.OK {
		return ""
	}
	return probe.Error
}

// decodeAPIRequest reads query, form or JSON arguments and the token. It
// returns a Slack error code when the body cannot be read.
func decodeAPIRequest(r *http.Request) (*apiRequest, string) {
	req := &apiRequest{form: url.Values{}}
	maps.Copy(req.form, r.URL.Query())
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		req.token, req.tokenFromHeader = strings.TrimSpace(token), true
	}
	if r.Method == http.MethodPost {
		if code := decodeBody(r, req); code != "" {
			return req, code
		}
	}
	if req.token == "" {
		req.token = req.form.Get("token")
	}
	return req, ""
}

func decodeBody(r *http.Request, req *apiRequest) string {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "multipart/form-data" {
		if err := r.ParseMultipartForm(maxRequestBody); err != nil {
			return "invalid_form_data"
		}
		for k, v := range r.MultipartForm.Value {
			req.form[k] = append(req.form[k], v...)
		}
		return ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		return "invalid_form_data"
	}
	if mediaType == "application/json" {
		return decodeJSONBody(body, req)
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return "invalid_form_data"
	}
	for k, v := range values {
		req.form[k] = append(req.form[k], v...)
	}
	return ""
}

func decodeJSONBody(body []byte, req *apiRequest) string {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return ""
	}
	if err := json.Unmarshal(trimmed, &req.json); err != nil {
		return "invalid_json"
	}
	for k, v := range req.json {
		req.form.Set(k, jsonArgString(v))
	}
	return ""
}

// jsonArgString renders a JSON argument the way it would arrive in a form:
// strings as is, everything else as JSON.
func jsonArgString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	out, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(out)
}
