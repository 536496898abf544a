package cfapitest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

type apiAnswer struct {
	status int
	env    struct {
		Success    bool            `json:"success"`
		Errors     []Message       `json:"errors"`
		Result     json.RawMessage `json:"result"`
		ResultInfo *ResultInfo     `json:"result_info"`
	}
}

// call makes one request; it may run outside the test goroutine, so it
// reports every problem as an error.
func call(ctx context.Context, s *Server, method, path string, header map[string]string) (*apiAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	a := &apiAnswer{status: resp.StatusCode}
	if err := json.Unmarshal(body, &a.env); err != nil {
		return nil, fmt.Errorf("answer %d %q is not JSON: %w", resp.StatusCode, body, err)
	}
	return a, nil
}

func mustCall(t *testing.T, s *Server, method, path string, header map[string]string) *apiAnswer {
	t.Helper()
	a, err := call(context.Background(), s, method, path, header)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

func newFake(t *testing.T) (*FakeAccount, *Server) {
	fake := NewFakeAccount(testAccount)
	fake.SetToken(FakeToken{Value: "abc123", ID: "ed17574386854bf78a67040be0a770b0", Status: "active", Owner: AccountToken})
	fake.AddUser(FakeUser{ID: testUser, Email: "alice@example.com", Name: "Alice", RiskLevel: "high",
		Events: []FakeEvent{{ID: "e1", Name: "Impossible travel", RiskLevel: "high", Timestamp: time.Now()}}})
	return fake, NewServer(t, fake)
}

var (
	resetPath = "/accounts/" + testAccount + "/zt_risk_scoring/" + testUser + "/reset"
	riskPath  = "/accounts/" + testAccount + "/zt_risk_scoring/" + testUser
)

func TestFakeResetClearsRisk(t *testing.T) {
	fake, s := newFake(t)
	if a := mustCall(t, s, "POST", resetPath, bearer); a.status != 200 || !a.env.Success {
		t.Fatalf("reset answered %d %+v", a.status, a.env)
	}
	u, _ := fake.User(testUser)
	if u.LastResetTime == nil || u.RiskLevel != "" || len(u.Events) != 0 {
		t.Errorf("user after reset %+v, want reset time set and risk cleared", u)
	}
	if fake.Resets(testUser) != 1 || fake.Calls(OpResetRisk) != 1 {
		t.Errorf("resets %d, calls %d, want 1 and 1", fake.Resets(testUser), fake.Calls(OpResetRisk))
	}
	if got := s.Requests()[0].Operation; got != OpResetRisk {
		t.Errorf("recorded operation %q", got)
	}
}

func TestFakeRefusesOtherCredentialsAndDenied(t *testing.T) {
	fake, s := newFake(t)
	if a := mustCall(t, s, "GET", riskPath, map[string]string{"Authorization": "Bearer other"}); a.status != 403 || a.env.Errors[0].Code != CodeAuthentication {
		t.Errorf("wrong token answered %d %+v", a.status, a.env)
	}
	fake.Deny(OpGetUserRisk)
	if a := mustCall(t, s, "GET", riskPath, bearer); a.status != 403 {
		t.Errorf("denied call answered %d", a.status)
	}
	if a := mustCall(t, s, "POST", resetPath, bearer); a.status != 200 {
		t.Errorf("a call that was not denied answered %d", a.status)
	}
}

func TestFakeFaultsAreServedInOrder(t *testing.T) {
	fake, s := newFake(t)
	fake.Inject(OpGetUserRisk,
		Fault{Status: 429, RetryAfter: "3"},
		Fault{Status: 503, Code: 10503, Message: "busy"},
	)
	a := mustCall(t, s, "GET", riskPath, bearer)
	if a.status != 429 {
		t.Errorf("first call %d, want 429", a.status)
	}
	a = mustCall(t, s, "GET", riskPath, bearer)
	if a.status != 503 || a.env.Errors[0].Code != 10503 {
		t.Errorf("second call %d %+v, want 503 code 10503", a.status, a.env)
	}
	a = mustCall(t, s, "GET", riskPath, bearer)
	if a.status != 200 || a.env.ResultInfo == nil {
		t.Errorf("third call %d %+v, want the normal answer", a.status, a.env)
	}
}

func TestFakeUserSearchIsSubstringAndPaged(t *testing.T) {
	fake, s := newFake(t)
	fake.AddUser(FakeUser{ID: "00000000-0000-4000-8000-000000000001", Email: "malice@example.com"})
	fake.AddUser(FakeUser{ID: "00000000-0000-4000-8000-000000000002", Email: "bob@example.com"})
	fake.SetMaxPerPage(1)
	a := mustCall(t, s, "GET", "/accounts/"+testAccount+"/access/users?email=ALICE%40example.com&page=2&per_page=50", bearer)
	var users []accessUser
	if err := json.Unmarshal(a.env.Result, &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Email != "malice@example.com" {
		t.Errorf("page 2 holds %+v, want malice", users)
	}
	if ri := a.env.ResultInfo; ri == nil || ri.Page != 2 || ri.PerPage != 1 || ri.TotalCount != 2 {
		t.Errorf("result_info %+v", a.env.ResultInfo)
	}
}

func TestFakeHangEndsWhenTheClientGivesUp(t *testing.T) {
	fake, s := newFake(t)
	fake.Inject(OpResetRisk, Fault{Hang: true, ApplyFirst: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := call(ctx, s, "POST", resetPath, bearer); err == nil {
		t.Fatal("a hung call answered")
	}
	if fake.Resets(testUser) != 1 {
		t.Errorf("ApplyFirst did not reset")
	}
}

func TestServerCloseReleasesHungHandlers(t *testing.T) {
	errs := make(chan error, 1)
	arrived := make(chan struct{}, 1)
	t.Run("server", func(t *testing.T) {
		fake, s := newFake(t)
		fake.Inject(OpGetUserRisk, Fault{Hang: true, Notify: arrived})
		go func() {
			_, err := call(context.Background(), s, "GET", riskPath, bearer)
			errs <- err
		}()
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("the call never arrived")
		}
	}) // the server closes here
	select {
	case err := <-errs:
		if err == nil {
			t.Error("a hung call answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("closing the server left the call hanging")
	}
}

// waitSignal waits for a value on ch, failing the test after a deadline.
func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s never happened", what)
	}
}

func TestFakeApplyAfterOutlivesTheClient(t *testing.T) {
	fake, s := newFake(t)
	applied := make(chan struct{}, 1)
	fake.Inject(OpResetRisk, Fault{Hang: true, ApplyAfter: 100 * time.Millisecond, Applied: applied})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := call(ctx, s, "POST", resetPath, bearer); err == nil {
		t.Fatal("a hung call answered")
	}
	if n := fake.Resets(testUser); n != 0 {
		t.Fatalf("%d resets before ApplyAfter, want 0", n)
	}
	waitSignal(t, applied, "the late reset")
	if u, _ := fake.User(testUser); fake.Resets(testUser) != 1 || u.LastResetTime == nil {
		t.Errorf("resets %d, user %+v: want the reset applied after the client left", fake.Resets(testUser), u)
	}
}

func TestFakeApplyAfterWithANormalAnswer(t *testing.T) {
	fake, s := newFake(t)
	applied := make(chan struct{}, 1)
	fake.Inject(OpResetRisk, Fault{ApplyAfter: 50 * time.Millisecond, Applied: applied})
	if a := mustCall(t, s, "POST", resetPath, bearer); a.status != 200 || !a.env.Success {
		t.Fatalf("reset answered %d %+v, want the usual success", a.status, a.env)
	}
	if n := fake.Resets(testUser); n != 0 {
		t.Errorf("%d resets at the answer, want 0 until ApplyAfter", n)
	}
	waitSignal(t, applied, "the late reset")
	if n := fake.Resets(testUser); n != 1 {
		t.Errorf("%d resets, want 1", n)
	}
}

func TestFakeCloseStopsLateEffects(t *testing.T) {
	fake, s := newFake(t)
	fake.Inject(OpResetRisk, Fault{Status: 504, ApplyAfter: time.Hour})
	if a := mustCall(t, s, "POST", resetPath, bearer); a.status != 504 {
		t.Fatalf("reset answered %d, want 504", a.status)
	}
	fake.Close()
	fake.Close() // a second Close, as the Server's cleanup does, is harmless
	if n := fake.Resets(testUser); n != 0 {
		t.Errorf("%d resets, want 0", n)
	}
	fake.mu.Lock()
	pending := len(fake.late)
	fake.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d late effects still scheduled after Close", pending)
	}
}

func TestFakeUserPageInfoRewrite(t *testing.T) {
	fake, s := newFake(t)
	fake.SetUserPageInfo(func(ResultInfo) any { return nil })
	a := mustCall(t, s, "GET", "/accounts/"+testAccount+"/access/users?email=alice%40example.com", bearer)
	if a.status != 200 || a.env.ResultInfo != nil {
		t.Errorf("answer %d with result_info %+v, want none", a.status, a.env.ResultInfo)
	}
}
