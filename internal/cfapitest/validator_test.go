package cfapitest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const (
	testAccount = "023e105f4ecef8ad9ca31a8372d0c353"
	testUser    = "f2108713-1206-4e84-8b80-0e71a6a1c67b"
)

// problemT records Errorf calls instead of failing, so a test can assert
// that the validator complains.
type problemT struct {
	testing.TB
	mu       sync.Mutex
	problems []string
}

func (p *problemT) Errorf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

func (p *problemT) Helper() {}

func (p *problemT) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

func newRequest(method, path string, header map[string]string, body string) *http.Request {
	r := httptest.NewRequest(method, "http://127.0.0.1"+BasePath+path, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

var bearer = map[string]string{"Authorization": "Bearer abc123"}

func TestCheckRequest(t *testing.T) {
	v := NewValidator(t)
	resetPath := "/accounts/" + testAccount + "/zt_risk_scoring/" + testUser + "/reset"
	usersPath := "/accounts/" + testAccount + "/access/users"
	tests := []struct {
		name    string
		req     *http.Request
		wantBad string // substring of the complaint; "" = valid
	}{
		{"reset with token", newRequest("POST", resetPath, bearer, ""), ""},
		{"reset with key", newRequest("POST", resetPath, map[string]string{"X-Auth-Email": "a@b.c", "X-Auth-Key": "k"}, ""), ""},
		{"both schemes", newRequest("POST", resetPath, map[string]string{"Authorization": "Bearer x", "X-Auth-Key": "k", "X-Auth-Email": "a@b.c"}, ""), "both"},
		{"email without key", newRequest("POST", resetPath, map[string]string{"X-Auth-Email": "a@b.c"}, ""), "only one"},
		{"no credentials", newRequest("POST", resetPath, nil, ""), "no credentials"},
		{"not bearer", newRequest("POST", resetPath, map[string]string{"Authorization": "Basic eA=="}, ""), "Bearer"},
		{"reset with body", newRequest("POST", resetPath, bearer, `{"a":1}`), "body"},
		{"reset by GET", newRequest("GET", resetPath, bearer, ""), "no operation"},
		{"unknown path", newRequest("GET", "/accounts/"+testAccount+"/zt_risk_scoring/"+testUser+"/x", bearer, ""), "no operation"},
		{"account id too long", newRequest("POST", "/accounts/"+testAccount+"ff/zt_risk_scoring/"+testUser+"/reset", bearer, ""), "account_identifier"},
		{"users by email", newRequest("GET", usersPath+"?email=a%40b.c&page=2&per_page=50", bearer, ""), ""},
		{"users unknown param", newRequest("GET", usersPath+"?mail=a", bearer, ""), `"mail"`},
		{"users bad page", newRequest("GET", usersPath+"?page=0", bearer, ""), `"page"`},
		{"risk unknown param", newRequest("GET", "/accounts/"+testAccount+"/zt_risk_scoring/"+testUser+"?foo=1", bearer, ""), `"foo"`},
		{"risk bad order_by", newRequest("GET", "/accounts/"+testAccount+"/zt_risk_scoring/"+testUser+"?order_by=name", bearer, ""), "order_by"},
		{"user verify with key", newRequest("GET", "/user/tokens/verify", map[string]string{"X-Auth-Email": "a@b.c", "X-Auth-Key": "k"}, ""), "does not accept"},
		{"account verify", newRequest("GET", "/accounts/"+testAccount+"/tokens/verify", bearer, ""), ""},
		{"account verify with key", newRequest("GET", "/accounts/"+testAccount+"/tokens/verify", map[string]string{"X-Auth-Email": "a@b.c", "X-Auth-Key": "k"}, ""), "only API tokens"},
		{"account verify query", newRequest("GET", "/accounts/"+testAccount+"/tokens/verify?x=1", bearer, ""), "no query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt := &problemT{TB: t}
			v.CheckRequest(pt, tt.req)
			assertProblems(t, pt.list(), tt.wantBad)
		})
	}
}

func assertProblems(t *testing.T, problems []string, wantBad string) {
	t.Helper()
	if wantBad == "" {
		if len(problems) > 0 {
			t.Errorf("valid traffic rejected: %q", problems)
		}
		return
	}
	for _, p := range problems {
		if strings.Contains(p, wantBad) {
			return
		}
	}
	t.Errorf("want a complaint containing %q, got %q", wantBad, problems)
}

func TestCheckResponse(t *testing.T) {
	v := NewValidator(t)
	reset := newRequest("POST", "/accounts/"+testAccount+"/zt_risk_scoring/"+testUser+"/reset", bearer, "")
	risk := newRequest("GET", "/accounts/"+testAccount+"/zt_risk_scoring/"+testUser, bearer, "")
	users := newRequest("GET", "/accounts/"+testAccount+"/access/users?email=a", bearer, "")
	userVerify := newRequest("GET", "/user/tokens/verify", bearer, "")
	acctVerify := newRequest("GET", "/accounts/"+testAccount+"/tokens/verify", bearer, "")
	json := http.Header{"Content-Type": {"application/json"}}
	html := http.Header{"Content-Type": {"text/html"}}
	failure := `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}`
	riskOK := `{"success":true,"errors":[],"messages":[],"result":{"email":"a@b.c","name":"A","risk_level":"high","events":[{"id":"e1","name":"Impossible travel","risk_level":"high","timestamp":"2024-01-01T00:00:00Z"}],"last_reset_time":null},"result_info":{"page":1,"per_page":1,"count":1,"total_count":1}}`
	tests := []struct {
		name    string
		req     *http.Request
		status  int
		header  http.Header
		body    string
		wantBad string
	}{
		{"reset ok", reset, 200, json, `{"success":true,"errors":[],"messages":[],"result":{}}`, ""},
		{"reset null result", reset, 200, json, `{"success":true,"errors":[],"messages":[],"result":null}`, "result"},
		{"reset 403", reset, 403, json, failure, ""},
		{"reset 429", reset, 429, json, failure, ""},
		{"reset 502 envelope", reset, 502, json, failure, ""},
		{"reset 502 html", reset, 502, html, "<html>bad gateway</html>", "Content-Type"},
		{"reset 201", reset, 201, json, `{"success":true,"errors":[],"messages":[],"result":{}}`, "status"},
		{"risk ok", risk, 200, json, riskOK, ""},
		{"risk page 0", risk, 200, json, strings.Replace(riskOK, `"page":1`, `"page":0`, 1), "minimum"},
		{"risk bad level", risk, 200, json, strings.Replace(riskOK, `"risk_level":"high"`, `"risk_level":"severe"`, 1), "severe"},
		{"failure with success true", risk, 404, json, strings.Replace(failure, "false", "true", 1), "success"},
		{"users ok", users, 200, json, `{"success":true,"errors":[],"messages":[],"result":[{"id":"x","email":"a@b.c","name":"A"}],"result_info":{"page":1,"per_page":50,"count":1,"total_count":1}}`, ""},
		{"users result not list", users, 200, json, `{"success":true,"errors":[],"messages":[],"result":{"id":"x"}}`, "result"},
		{"user verify ok", userVerify, 200, json, `{"success":true,"errors":[],"messages":[],"result":{"id":"ed17574386854bf78a67040be0a770b0","status":"active"}}`, ""},
		{"user verify 401", userVerify, 401, json, strings.Replace(failure, "10000", "1000", 1), ""},
		{"user verify 401 success", userVerify, 401, json, strings.Replace(failure, "false", "true", 1), "success"},
		{"account verify ok", acctVerify, 200, json, `{"success":true,"errors":[],"messages":[],"result":{"id":"ed17574386854bf78a67040be0a770b0","status":"active"}}`, ""},
		{"account verify bad status", acctVerify, 200, json, `{"success":true,"errors":[],"messages":[],"result":{"id":"x","status":"fine"}}`, "fine"},
		{"account verify 404", acctVerify, 404, json, failure, ""},
		{"account verify 404 not json", acctVerify, 404, json, `{"success":`, "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt := &problemT{TB: t}
			v.CheckResponse(pt, tt.req, tt.status, tt.header, []byte(tt.body))
			assertProblems(t, pt.list(), tt.wantBad)
		})
	}
}

func TestServerRejectsRequestOutsideBasePath(t *testing.T) {
	pt := &problemT{TB: t}
	s := NewServer(pt, NewFakeAccount(testAccount))
	req, err := http.NewRequest("POST", strings.TrimSuffix(s.URL, BasePath)+"/accounts/"+testAccount+"/zt_risk_scoring/"+testUser+"/reset", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer x")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	assertProblems(t, pt.list(), "ignored its base URL")
	if s.RequestCount() != 1 {
		t.Errorf("recorded %d requests, want 1", s.RequestCount())
	}
}

func TestServerValidatesResponsesUnlessOffSpec(t *testing.T) {
	for _, offSpec := range []bool{false, true} {
		t.Run(fmt.Sprintf("offSpec=%v", offSpec), func(t *testing.T) {
			pt := &problemT{TB: t}
			s := NewServer(pt, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if offSpec {
					MarkOffSpec(w)
				}
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				fmt.Fprint(w, "<html>502 Bad Gateway</html>")
			}))
			req, _ := http.NewRequest("GET", s.URL+"/user/tokens/verify", nil)
			req.Header.Set("Authorization", "Bearer x")
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want the handler's 502", resp.StatusCode)
			}
			if offSpec {
				assertProblems(t, pt.list(), "")
			} else {
				assertProblems(t, pt.list(), "Content-Type")
			}
		})
	}
}
