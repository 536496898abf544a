package cfapitest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FakeUser is a Zero Trust user of a FakeAccount.
type FakeUser struct {
	ID, Email, Name string
	RiskLevel       string // "low", "medium", "high", or "" for none (null)
	Events          []FakeEvent
	LastResetTime   *time.Time
}

// FakeEvent is a risk event of a FakeUser.
type FakeEvent struct {
	ID, Name, RiskLevel string
	Timestamp           time.Time
}

// TokenOwner says which verify endpoint knows an API token.
type TokenOwner string

// Token owners.
const (
	AccountToken TokenOwner = "account"
	UserToken    TokenOwner = "user"
)

// FakeToken is the API token a FakeAccount accepts.
type FakeToken struct {
	Value     string
	ID        string // 32 characters at most
	Status    string // "active", "disabled" or "expired"
	ExpiresOn *time.Time
	Owner     TokenOwner
}

// Fault replaces the normal answer to one call. The zero Fault serves the
// call normally; fields combine in the order they are listed.
type Fault struct {
	// Notify, when set, receives a value (without blocking: give it a
	// buffer) as soon as the faulty call arrives.
	Notify chan<- struct{}
	// ApplyAfter carries out the call's effect (the reset) this long after
	// the call arrived, whether or not the client is still connected: a
	// Cloudflare that keeps working on a request whose answer the client
	// gave up on. With a fault that answers normally, the answer is the
	// usual success, sent before the effect shows.
	ApplyAfter time.Duration
	// Applied, when set, receives a value (without blocking: give it a
	// buffer) once ApplyAfter's effect is carried out.
	Applied chan<- struct{}
	// Delay holds the answer back, or until the client gives up. A reset
	// whose client gives up while delayed is not applied (unless
	// ApplyAfter says when it is).
	Delay time.Duration
	// ApplyFirst carries out the call's effect (the reset) before the
	// fault, as when Cloudflare applied a change but the answer was lost.
	ApplyFirst bool
	// Hang answers nothing until the client gives up or the server closes.
	Hang bool
	// CloseConn drops the connection without any answer.
	CloseConn bool
	// Status, when not 0, is answered instead of the normal response, with
	// a failure envelope made of Code and Message unless Body is set.
	Status  int
	Code    int
	Message string
	// Body is sent as is. Set OffSpec when it breaks the spec on purpose
	// (HTML page, truncated JSON) so the Server does not validate it.
	Body    string
	OffSpec bool
	// ShortBody declares a Content-Length longer than Body, so the
	// connection ends in the middle of the body. Implies OffSpec.
	ShortBody bool
	// RetryAfter is sent as the Retry-After header when not empty.
	RetryAfter string
	// Header holds extra response headers.
	Header http.Header
}

// FakeAccount is an in-memory Cloudflare account serving the calls the bot
// makes: reset and read a user's risk score, look users up by email, verify
// the API token. Serve it through NewServer so traffic is validated. Its
// methods are safe for concurrent use.
type FakeAccount struct {
	id string

	mu         sync.Mutex
	now        func() time.Time
	users      []*FakeUser
	resets     map[string]int
	calls      map[string]int
	faults     map[string][]Fault
	denied     map[string]bool
	maxPerPage int
	pageInfo   func(ResultInfo) any
	// late holds the timers of ApplyAfter effects still to come; Close
	// stops them, and pending counts the ones not yet finished.
	late     map[*time.Timer]bool
	pending  sync.WaitGroup
	closed   bool
	token    *FakeToken
	apiEmail string
	apiKey   string
	mux      *http.ServeMux
}

// FakeRay is the cf-ray header of every answer, so tests can check that it
// reaches error messages.
const FakeRay = "8f0c0ffee0000000-SJC"

// Error codes the fake answers with.
const (
	CodeAuthentication = 10000 // 403: missing permission or bad credentials
	CodeInvalidToken   = 1000  // 401: token unknown to this verify endpoint
	CodeNoRoute        = 7003  // 404: unknown path or account
	CodeUserNotFound   = 1404  // 404: unknown user (code invented by the fake)
	CodeRateLimited    = 10429 // 429 (code invented by the fake)
	CodeInternal       = 10500 // 5xx (code invented by the fake)
)

// NewFakeAccount returns an empty account with the given 32-hex id. With no
// token or key configured it accepts any well-formed credentials.
func NewFakeAccount(accountID string) *FakeAccount {
	a := &FakeAccount{
		id:     accountID,
		now:    func() time.Time { return time.Now().UTC() },
		resets: map[string]int{},
		calls:  map[string]int{},
		faults: map[string][]Fault{},
		denied: map[string]bool{},
		late:   map[*time.Timer]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+BasePath+"/accounts/{account}/zt_risk_scoring/{user}/reset", a.handle(OpResetRisk, a.serveReset))
	mux.HandleFunc("GET "+BasePath+"/accounts/{account}/zt_risk_scoring/{user}", a.handle(OpGetUserRisk, a.serveRisk))
	mux.HandleFunc("GET "+BasePath+"/accounts/{account}/access/users", a.handle(OpListUsers, a.serveUsers))
	mux.HandleFunc("GET "+BasePath+"/accounts/{account}/tokens/verify", a.handle(OpVerifyAccountToken, a.serveVerify))
	mux.HandleFunc("GET "+BasePath+"/user/tokens/verify", a.handle(OpVerifyUserToken, a.serveVerify))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		WriteFailure(w, http.StatusNotFound, CodeNoRoute, "No route for the URI")
	})
	a.mux = mux
	return a
}

// ServeHTTP serves the API under /client/v4.
func (a *FakeAccount) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// AddUser adds or replaces (by id) a user.
func (a *FakeAccount) AddUser(u FakeUser) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u.Events = slices.Clone(u.Events)
	for i, old := range a.users {
		if old.ID == u.ID {
			a.users[i] = &u
			return
		}
	}
	a.users = append(a.users, &u)
}

// User returns a copy of the user with this id.
func (a *FakeAccount) User(id string) (FakeUser, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.userLocked(id)
	if u == nil {
		return FakeUser{}, false
	}
	c := *u
	c.Events = slices.Clone(u.Events)
	return c, true
}

// Resets returns how many resets of this user were carried out.
func (a *FakeAccount) Resets(userID string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.resets[userID]
}

// Calls returns how many calls of an operation (Op… constants) arrived.
func (a *FakeAccount) Calls(op string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[op]
}

// SetClock replaces the clock used for last_reset_time.
func (a *FakeAccount) SetClock(now func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = now
}

// SetMaxPerPage caps the page size of user lookups, as servers may do.
func (a *FakeAccount) SetMaxPerPage(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.maxPerPage = n
}

// SetUserPageInfo rewrites the result_info of user lookup pages, as
// servers that leave it out (return nil) or omit some of its fields (return
// a map) do.
func (a *FakeAccount) SetUserPageInfo(rewrite func(ResultInfo) any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pageInfo = rewrite
}

// Close stops the effects ApplyAfter still has to carry out and waits for
// any being carried out, so none outlives the test. A Server closes the
// handler it serves when it implements Close.
func (a *FakeAccount) Close() {
	a.mu.Lock()
	a.closed = true
	for t := range a.late {
		if t.Stop() {
			a.pending.Done()
		}
	}
	clear(a.late)
	a.mu.Unlock()
	a.pending.Wait()
}

// SetToken makes the account accept only this API token.
func (a *FakeAccount) SetToken(tok FakeToken) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.token = &tok
}

// SetAPIKey makes the account accept only this legacy email and key.
func (a *FakeAccount) SetAPIKey(email, key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apiEmail, a.apiKey = email, key
}

// Deny makes every later call of op fail with 403/10000, as when the token
// lacks the permission the operation needs.
func (a *FakeAccount) Deny(op string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.denied[op] = true
}

// Inject queues faults for the next calls of op, one fault per call.
func (a *FakeAccount) Inject(op string, faults ...Fault) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults[op] = append(a.faults[op], faults...)
}

func (a *FakeAccount) userLocked(id string) *FakeUser {
	for _, u := range a.users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

type opHandler func(w http.ResponseWriter, r *http.Request)

// handle wraps an operation with call counting, faults, credential and
// permission checks.
func (a *FakeAccount) handle(op string, serve opHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cf-Ray", FakeRay)
		a.mu.Lock()
		a.calls[op]++
		fault, faulty := a.nextFaultLocked(op)
		a.mu.Unlock()
		if faulty {
			if done := a.applyFault(op, fault, w, r); done {
				return
			}
		}
		if !a.authorized(op, w, r) {
			return
		}
		serve(w, r)
	}
}

func (a *FakeAccount) nextFaultLocked(op string) (Fault, bool) {
	queue := a.faults[op]
	if len(queue) == 0 {
		return Fault{}, false
	}
	a.faults[op] = queue[1:]
	return queue[0], true
}

// applyFault plays a fault and reports whether the response is complete.
func (a *FakeAccount) applyFault(op string, f Fault, w http.ResponseWriter, r *http.Request) bool {
	notify(f.Notify)
	if f.ApplyAfter > 0 && op == OpResetRisk {
		a.applyLater(r.PathValue("user"), f.ApplyAfter, f.Applied)
	}
	if f.Delay > 0 {
		timer := time.NewTimer(f.Delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return true
		}
	}
	if f.ApplyFirst && op == OpResetRisk {
		a.reset(r.PathValue("user"))
	}
	switch {
	case f.Hang:
		<-r.Context().Done()
		return true
	case f.CloseConn:
		closeConnection(w)
		return true
	case f.Status == 0 && f.ApplyAfter > 0 && op == OpResetRisk:
		WriteSuccess(w, http.StatusOK, nil, nil)
		return true
	case f.Status == 0:
		return false
	}
	writeFault(w, f)
	return true
}

// applyLater resets the user after d on a timer of its own, so the effect
// does not depend on the request's connection.
func (a *FakeAccount) applyLater(userID string, d time.Duration, applied chan<- struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.pending.Add(1)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		defer a.pending.Done()
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.closed {
			return
		}
		delete(a.late, t)
		a.resetLocked(userID)
		notify(applied)
	})
	a.late[t] = true
}

func notify(ch chan<- struct{}) {
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

func closeConnection(w http.ResponseWriter) {
	h, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cfapitest: cannot close the connection", http.StatusInternalServerError)
		return
	}
	conn, _, err := h.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
}

func writeFault(w http.ResponseWriter, f Fault) {
	for k, v := range f.Header {
		w.Header()[k] = v
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body == "" && !f.ShortBody {
		code, msg := f.Code, f.Message
		if code == 0 {
			code, msg = defaultFailure(f.Status)
		}
		WriteFailure(w, f.Status, code, msg)
		return
	}
	if f.OffSpec || f.ShortBody {
		MarkOffSpec(w)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	if f.ShortBody {
		w.Header().Set("Content-Length", strconv.Itoa(len(f.Body)+64))
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(f.Body))
}

func defaultFailure(status int) (int, string) {
	switch {
	case status == http.StatusTooManyRequests:
		return CodeRateLimited, "Rate limited"
	case status == http.StatusForbidden:
		return CodeAuthentication, "Authentication error"
	case status == http.StatusNotFound:
		return CodeNoRoute, "No route for the URI"
	case status >= 500:
		return CodeInternal, "Internal server error"
	default:
		return 1000 + status, http.StatusText(status)
	}
}

// authorized checks the account id, the credentials and Deny.
func (a *FakeAccount) authorized(op string, w http.ResponseWriter, r *http.Request) bool {
	if acct := r.PathValue("account"); op != OpVerifyUserToken && acct != a.id {
		WriteFailure(w, http.StatusNotFound, CodeNoRoute, "No route for the URI")
		return false
	}
	if !a.credentialsOK(op, r.Header) {
		status, code, msg := http.StatusForbidden, CodeAuthentication, "Authentication error"
		if op == OpVerifyAccountToken || op == OpVerifyUserToken {
			status, code, msg = http.StatusUnauthorized, CodeInvalidToken, "Invalid API Token"
		}
		WriteFailure(w, status, code, msg)
		return false
	}
	a.mu.Lock()
	denied := a.denied[op]
	a.mu.Unlock()
	if denied {
		WriteFailure(w, http.StatusForbidden, CodeAuthentication, "Authentication error")
		return false
	}
	return true
}

func (a *FakeAccount) credentialsOK(op string, h http.Header) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	bearer, isToken := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if a.token == nil && a.apiKey == "" {
		return isToken || h.Get("X-Auth-Key") != ""
	}
	if isToken {
		if a.token == nil || bearer != a.token.Value {
			return false
		}
		switch op {
		case OpVerifyAccountToken:
			return a.token.Owner == AccountToken
		case OpVerifyUserToken:
			return a.token.Owner == UserToken
		}
		return true
	}
	return a.apiKey != "" && h.Get("X-Auth-Email") == a.apiEmail && h.Get("X-Auth-Key") == a.apiKey
}

func (a *FakeAccount) reset(userID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.resetLocked(userID)
}

func (a *FakeAccount) resetLocked(userID string) bool {
	u := a.userLocked(userID)
	if u == nil {
		return false
	}
	now := a.now()
	u.LastResetTime = &now
	u.RiskLevel = ""
	u.Events = nil
	a.resets[userID]++
	return true
}

func (a *FakeAccount) serveReset(w http.ResponseWriter, r *http.Request) {
	if !a.reset(r.PathValue("user")) {
		WriteFailure(w, http.StatusNotFound, CodeUserNotFound, "User not found")
		return
	}
	WriteSuccess(w, http.StatusOK, nil, nil)
}

type riskEvent struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	RiskLevel string `json:"risk_level"`
	Timestamp string `json:"timestamp"`
}

type riskResult struct {
	Email         string      `json:"email"`
	Name          string      `json:"name"`
	RiskLevel     *string     `json:"risk_level"`
	Events        []riskEvent `json:"events"`
	LastResetTime *string     `json:"last_reset_time"`
}

func (a *FakeAccount) serveRisk(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	u := a.userLocked(r.PathValue("user"))
	var res riskResult
	if u != nil {
		res = riskResultOf(u)
	}
	a.mu.Unlock()
	if u == nil {
		WriteFailure(w, http.StatusNotFound, CodeUserNotFound, "User not found")
		return
	}
	n := len(res.Events)
	WriteSuccess(w, http.StatusOK, res, ResultInfo{Page: 1, PerPage: max(n, 1), Count: n, TotalCount: n})
}

func riskResultOf(u *FakeUser) riskResult {
	res := riskResult{Email: u.Email, Name: u.Name, Events: []riskEvent{}}
	if u.RiskLevel != "" {
		level := u.RiskLevel
		res.RiskLevel = &level
	}
	if u.LastResetTime != nil {
		t := u.LastResetTime.UTC().Format(time.RFC3339Nano)
		res.LastResetTime = &t
	}
	for _, e := range u.Events {
		res.Events = append(res.Events, riskEvent{
			ID: e.ID, Name: e.Name, RiskLevel: e.RiskLevel,
			Timestamp: e.Timestamp.UTC().Format(time.RFC3339Nano),
		})
	}
	return res
}

type accessUser struct {
	ID    string `json:"id"`
	UID   string `json:"uid"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

// serveUsers filters by substring, case-insensitively, as the live search
// may: clients must pick the exact match themselves.
func (a *FakeAccount) serveUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, perPage := intParam(q.Get("page"), 1), intParam(q.Get("per_page"), 25)
	a.mu.Lock()
	if a.maxPerPage > 0 && perPage > a.maxPerPage {
		perPage = a.maxPerPage
	}
	var matches []accessUser
	for _, u := range a.users {
		if contains(u.Email, q.Get("email")) && contains(u.Name, q.Get("name")) &&
			(contains(u.Email, q.Get("search")) || contains(u.Name, q.Get("search"))) {
			matches = append(matches, accessUser{ID: u.ID, UID: u.ID, Email: u.Email, Name: u.Name})
		}
	}
	a.mu.Unlock()
	start := min((page-1)*perPage, len(matches))
	end := min(start+perPage, len(matches))
	pageUsers := append([]accessUser{}, matches[start:end]...)
	var info any = ResultInfo{Page: page, PerPage: perPage, Count: len(pageUsers), TotalCount: len(matches)}
	a.mu.Lock()
	if a.pageInfo != nil {
		info = a.pageInfo(info.(ResultInfo))
	}
	a.mu.Unlock()
	WriteSuccess(w, http.StatusOK, pageUsers, info)
}

func contains(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func intParam(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return def
	}
	return n
}

type tokenResult struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	ExpiresOn string `json:"expires_on,omitempty"`
}

// serveVerify answers both verify endpoints; credentialsOK has already
// refused a token on the endpoint of the other owner.
func (a *FakeAccount) serveVerify(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	res := tokenResult{ID: "ed17574386854bf78a67040be0a770b0", Status: "active"}
	if tok := a.token; tok != nil {
		res.ID, res.Status = tok.ID, tok.Status
		if tok.ExpiresOn != nil {
			res.ExpiresOn = tok.ExpiresOn.UTC().Format(time.RFC3339)
		}
	}
	a.mu.Unlock()
	WriteSuccess(w, http.StatusOK, res, nil)
}
