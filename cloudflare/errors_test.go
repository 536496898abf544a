package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"risk-reset-bot/internal/cfapitest"
)

// call runs one of the three permissioned calls.
type call struct {
	name       string
	op         string
	permission string
	run        func(ctx context.Context, c *Client) error
}

var permissionedCalls = []call{
	{"reset", cfapitest.OpResetRisk, PermZeroTrustWrite, func(ctx context.Context, c *Client) error {
		_, err := c.ResetRiskScore(ctx, aliceID)
		return err
	}},
	{"risk", cfapitest.OpGetUserRisk, PermZeroTrustPIIRead, func(ctx context.Context, c *Client) error {
		_, err := c.GetUserRisk(ctx, aliceID)
		return err
	}},
	{"lookup", cfapitest.OpListUsers, PermAuditLogsRead, func(ctx context.Context, c *Client) error {
		_, err := c.FindUserByEmail(ctx, aliceEmail)
		return err
	}},
}

func TestMissingPermissionIsNamed(t *testing.T) {
	for _, auth := range []Auth{TokenAuth(testToken), KeyAuth(testAPIEmail, testAPIKey)} {
		for _, tc := range permissionedCalls {
			t.Run(fmt.Sprintf("%s/%v", tc.name, auth), func(t *testing.T) {
				f := newFixture(t, auth)
				f.fake.Deny(tc.op)

				err := tc.run(testContext(t), f.client)

				pe := wantAs[*PermissionError](t, err)
				if pe.Permission != tc.permission {
					t.Errorf("Permission %q, want %q", pe.Permission, tc.permission)
				}
				apiErr := wantAs[*APIError](t, err)
				if apiErr.StatusCode != http.StatusForbidden || !apiErr.HasCode(10000) || apiErr.CFRay != cfapitest.FakeRay {
					t.Errorf("APIError %+v, want 403, code 10000 and the cf-ray", apiErr)
				}
				want := fmt.Sprintf(`the API token lacks the %q permission (HTTP 403, code 10000, cf-ray %s)`, tc.permission, cfapitest.FakeRay)
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
				if calls := f.fake.Calls(tc.op); calls != 1 {
					t.Errorf("%d calls, want 1: a 403 is not retried", calls)
				}
				if f.fake.Resets(aliceID) != 0 {
					t.Error("a reset was applied")
				}
				assertNoSecrets(t, err)
			})
		}
	}
}

func TestRateLimitThenSuccess(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.Inject(cfapitest.OpGetUserRisk,
		cfapitest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "0"},
		cfapitest.Fault{Status: http.StatusTooManyRequests},
	)
	if _, err := f.client.GetUserRisk(testContext(t), aliceID); err != nil {
		t.Fatalf("GetUserRisk: %v", err)
	}
	if calls := f.fake.Calls(cfapitest.OpGetUserRisk); calls != 3 {
		t.Errorf("%d calls, want 3", calls)
	}
}

// alwaysRateLimited answers every call with 429.
func alwaysRateLimited(retryAfter string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cf-Ray", cfapitest.FakeRay)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		cfapitest.WriteFailure(w, http.StatusTooManyRequests, 10429, "Rate limited")
	})
}

func TestRateLimitBeyondBudgetWithBackoff(t *testing.T) {
	srv := cfapitest.NewServer(t, alwaysRateLimited(""))
	c := newTestClient(t, srv, nil, WithRetryBudget(30*time.Millisecond), WithBackoff(time.Millisecond, 4*time.Millisecond))
	start := time.Now()

	_, err := c.GetUserRisk(testContext(t), aliceID)

	rl := wantAs[*RateLimitError](t, err)
	if rl.Err == nil || rl.Err.StatusCode != http.StatusTooManyRequests || rl.Err.CFRay != cfapitest.FakeRay {
		t.Errorf("RateLimitError.Err %+v, want the last 429", rl.Err)
	}
	if n := srv.RequestCount(); n < 2 {
		t.Errorf("%d requests, want retries within the budget", n)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("took %v with a 30ms budget", elapsed)
	}
}

func TestRateLimitRetryAfterBeyondBudget(t *testing.T) {
	srv := cfapitest.NewServer(t, alwaysRateLimited("5"))
	c := newTestClient(t, srv, nil, WithRetryBudget(100*time.Millisecond))
	start := time.Now()

	_, err := c.FindUserByEmail(testContext(t), aliceEmail)

	rl := wantAs[*RateLimitError](t, err)
	if rl.RetryAfter != 5*time.Second {
		t.Errorf("RetryAfter %v, want 5s", rl.RetryAfter)
	}
	if n := srv.RequestCount(); n != 1 {
		t.Errorf("%d requests, want 1: waiting 5s would exceed the budget", n)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("took %v: the client waited instead of giving up", elapsed)
	}
	if !strings.Contains(err.Error(), "Retry-After 5s") || !strings.Contains(err.Error(), cfapitest.FakeRay) {
		t.Errorf("error %q lacks the Retry-After or the cf-ray", err)
	}
}

func TestContextCancelDuringBackoff(t *testing.T) {
	f := newFixture(t, nil, WithRetryBudget(time.Minute))
	arrived := make(chan struct{}, 1)
	f.fake.Inject(cfapitest.OpGetUserRisk, cfapitest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "20", Notify: arrived})
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	waiting := make(chan time.Duration, 1)
	f.client.onWait = func(d time.Duration) { waiting <- d }
	go func() {
		<-arrived
		// Cancel once the client is waiting out Retry-After.
		select {
		case <-waiting:
		case <-time.After(5 * time.Second):
		}
		cancel()
	}()
	start := time.Now()

	_, err := f.client.GetUserRisk(ctx, aliceID)

	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("returned after %v, want promptly after cancel", elapsed)
	}
	if calls := f.fake.Calls(cfapitest.OpGetUserRisk); calls != 1 {
		t.Errorf("%d calls, want 1", calls)
	}
}

func TestRetryPolicyByStatus(t *testing.T) {
	tests := []struct {
		status    int
		wantCalls int
	}{
		{http.StatusBadRequest, 1},
		{http.StatusUnauthorized, 1},
		{http.StatusNotFound, 1},
		{http.StatusConflict, 1},
		{http.StatusInternalServerError, 1},
		{http.StatusBadGateway, 2},
		{http.StatusServiceUnavailable, 2},
		{http.StatusGatewayTimeout, 2},
		{http.StatusTooManyRequests, 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			f := newFixture(t, nil)
			f.fake.Inject(cfapitest.OpGetUserRisk, cfapitest.Fault{Status: tt.status})

			_, err := f.client.GetUserRisk(testContext(t), aliceID)

			if calls := f.fake.Calls(cfapitest.OpGetUserRisk); calls != tt.wantCalls {
				t.Errorf("%d calls, want %d", calls, tt.wantCalls)
			}
			if tt.wantCalls == 2 {
				if err != nil {
					t.Errorf("error %v after a retryable status, want success on retry", err)
				}
				return
			}
			if apiErr := wantAs[*APIError](t, err); apiErr.StatusCode != tt.status {
				t.Errorf("status %d, want %d", apiErr.StatusCode, tt.status)
			}
		})
	}
}

func TestServerErrorBeyondBudget(t *testing.T) {
	f := newFixture(t, nil, WithRetryBudget(20*time.Millisecond))
	faults := make([]cfapitest.Fault, 100)
	for i := range faults {
		faults[i] = cfapitest.Fault{Status: http.StatusServiceUnavailable}
	}
	f.fake.Inject(cfapitest.OpGetUserRisk, faults...)

	_, err := f.client.GetUserRisk(testContext(t), aliceID)

	if apiErr := wantAs[*APIError](t, err); apiErr.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", apiErr.StatusCode)
	}
	if calls := f.fake.Calls(cfapitest.OpGetUserRisk); calls < 2 || calls == len(faults) {
		t.Errorf("%d calls, want a few retries bounded by the budget", calls)
	}
}

func TestSuccessFalseWithStatus200(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.Inject(cfapitest.OpGetUserRisk, cfapitest.Fault{
		Status:  http.StatusOK,
		Body:    `{"success":false,"errors":[{"code":1234,"message":"Something odd"},{"code":5678,"message":"and more"}],"messages":[{"code":1001,"message":"note"}],"result":null}`,
		OffSpec: true, // the 200 schema allows only success:true
	})

	_, err := f.client.GetUserRisk(testContext(t), aliceID)

	apiErr := wantAs[*APIError](t, err)
	if apiErr.StatusCode != http.StatusOK || len(apiErr.Errors) != 2 {
		t.Errorf("APIError %+v, want status 200 with both errors", apiErr)
	}
	for _, want := range []string{"HTTP 200", "success=false", "code 1234: Something odd", "code 5678: and more", "note", cfapitest.FakeRay, "GET /client/v4/accounts/"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(apiErr.Error(), "\n") {
		t.Errorf("error %q is not one line", apiErr)
	}
}

func TestUnreadableBodies(t *testing.T) {
	tests := []struct {
		name       string
		fault      cfapitest.Fault
		wantStatus int
		wantReason string
	}{
		{"html page", cfapitest.Fault{Status: http.StatusForbidden, Body: htmlPage, Header: htmlHeader, OffSpec: true}, 403, "not JSON"},
		{"html 200", cfapitest.Fault{Status: http.StatusOK, Body: htmlPage, Header: htmlHeader, OffSpec: true}, 200, "not JSON"},
		{"truncated json", cfapitest.Fault{Status: http.StatusOK, Body: `{"success":true,"errors":[],"result":{"email":"al`, OffSpec: true}, 200, "truncated"},
		{"connection ends mid-body", cfapitest.Fault{Status: http.StatusOK, Body: `{"success":true,"errors":[]`, ShortBody: true}, 200, "truncated"},
		{"empty", cfapitest.Fault{Status: http.StatusOK, Body: " ", OffSpec: true}, 200, "empty"},
		{"not an envelope", cfapitest.Fault{Status: http.StatusOK, Body: `{"result":{}}`, OffSpec: true}, 200, "not a Cloudflare envelope"},
		{"too large", cfapitest.Fault{Status: http.StatusOK, Body: `{"success":true,"errors":[],"messages":[],"result":{"name":"` + strings.Repeat("a", maxBodySize) + `"}}`, OffSpec: true}, 200, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.fake.Inject(cfapitest.OpGetUserRisk, tt.fault)

			_, err := f.client.GetUserRisk(testContext(t), aliceID)

			be := wantAs[*BodyError](t, err)
			if be.StatusCode != tt.wantStatus || be.Reason != tt.wantReason || be.CFRay != cfapitest.FakeRay {
				t.Errorf("BodyError %+v, want status %d, reason %q and the cf-ray", be, tt.wantStatus, tt.wantReason)
			}
			for _, want := range []string{tt.wantReason, fmt.Sprint(tt.wantStatus), cfapitest.FakeRay} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestHTMLBadGatewayIsRetried(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.Inject(cfapitest.OpGetUserRisk, cfapitest.Fault{Status: http.StatusBadGateway, Body: htmlPage, Header: htmlHeader, OffSpec: true})
	if _, err := f.client.GetUserRisk(testContext(t), aliceID); err != nil {
		t.Fatalf("GetUserRisk: %v", err)
	}
	if calls := f.fake.Calls(cfapitest.OpGetUserRisk); calls != 2 {
		t.Errorf("%d calls, want 2", calls)
	}
}

func TestDroppedConnectionIsRetriedForReads(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.Inject(cfapitest.OpGetUserRisk, cfapitest.Fault{CloseConn: true})
	if _, err := f.client.GetUserRisk(testContext(t), aliceID); err != nil {
		t.Fatalf("GetUserRisk: %v", err)
	}
	if calls := f.fake.Calls(cfapitest.OpGetUserRisk); calls != 2 {
		t.Errorf("%d calls, want 2", calls)
	}
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	for _, auth := range []Auth{TokenAuth(testToken), KeyAuth(testAPIEmail, testAPIKey)} {
		for _, s := range []string{fmt.Sprint(auth), fmt.Sprintf("%+v", auth), fmt.Sprintf("%#v", auth)} {
			if strings.Contains(s, testToken) || strings.Contains(s, testAPIKey) {
				t.Errorf("printing an Auth shows the credential: %q", s)
			}
		}
		faults := []cfapitest.Fault{
			{Status: http.StatusForbidden},
			{Status: http.StatusUnauthorized, Message: "Invalid API Token"},
			{Status: http.StatusBadRequest},
			{Status: http.StatusOK, Body: htmlPage, OffSpec: true},
			{Status: http.StatusInternalServerError},
		}
		for _, fault := range faults {
			f := newFixture(t, auth, WithBackoff(time.Hour, time.Hour))
			f.fake.Inject(cfapitest.OpGetUserRisk, fault)
			f.fake.Inject(cfapitest.OpResetRisk, fault)
			f.fake.Inject(cfapitest.OpListUsers, fault)
			_, err := f.client.GetUserRisk(testContext(t), aliceID)
			assertNoSecrets(t, err)
			_, err = f.client.ResetRiskScore(testContext(t), aliceID)
			assertNoSecrets(t, err)
			_, err = f.client.FindUserByEmail(testContext(t), aliceEmail)
			assertNoSecrets(t, err)
			_, err = f.client.VerifyToken(testContext(t))
			assertNoSecrets(t, err)
		}
	}
	// Credentials unfit for a header are refused without being echoed.
	for _, auth := range []Auth{TokenAuth(testToken + "\n"), KeyAuth(testAPIEmail, testAPIKey+" x")} {
		_, err := NewClient(testAccount, auth)
		if err == nil {
			t.Errorf("NewClient accepted a credential with whitespace")
		}
		assertNoSecrets(t, err)
	}
}

// countingTransport counts the response body bytes the client reads.
type countingTransport struct {
	base http.RoundTripper
	read atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func TestHugeBodyIsNotReadWhole(t *testing.T) {
	f := newFixture(t, nil)
	ct := &countingTransport{base: f.srv.Client().Transport}
	c := newTestClient(t, f.srv, nil, WithHTTPClient(&http.Client{Transport: ct}))
	f.fake.Inject(cfapitest.OpGetUserRisk, cfapitest.Fault{Status: http.StatusOK, OffSpec: true,
		Body: `{"success":true,"errors":[],"messages":[],"result":{"name":"` + strings.Repeat("a", 4*maxBodySize) + `"}}`})

	_, err := c.GetUserRisk(testContext(t), aliceID)

	if be := wantAs[*BodyError](t, err); be.Reason != "too large" {
		t.Errorf("reason %q, want too large", be.Reason)
	}
	if n := ct.read.Load(); n > 2*maxBodySize {
		t.Errorf("read %d bytes of a %d-byte body, want at most about %d", n, 4*maxBodySize, maxBodySize)
	}
}
