package cloudflare

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"risk-reset-bot/internal/cfapitest"
)

var (
	opReset = "POST " + cfapitest.OpResetRisk
	opRisk  = "GET " + cfapitest.OpGetUserRisk
)

func TestResetRiskScoreResetsAndVerifies(t *testing.T) {
	f := newFixture(t, nil)
	before := time.Now()

	res, err := f.client.ResetRiskScore(testContext(t), aliceID)
	if err != nil {
		t.Fatalf("ResetRiskScore: %v", err)
	}
	if !res.Verified || res.Ambiguous || res.VerifyErr != nil {
		t.Errorf("result %+v, want verified, not ambiguous", res)
	}
	if res.CFRay != cfapitest.FakeRay {
		t.Errorf("CFRay %q, want %q", res.CFRay, cfapitest.FakeRay)
	}
	if res.LastResetTime.Before(before.Add(-clockSkew)) {
		t.Errorf("LastResetTime %v is before the call", res.LastResetTime)
	}
	if n := f.fake.Resets(aliceID); n != 1 {
		t.Errorf("%d resets, want 1", n)
	}
	reqs := f.srv.Requests()
	if got, want := operations(reqs), []string{opReset, opRisk}; !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	wantPath := "/client/v4/accounts/" + testAccount + "/zt_risk_scoring/" + aliceID + "/reset"
	if reqs[0].Path != wantPath {
		t.Errorf("reset path %q, want %q", reqs[0].Path, wantPath)
	}
	if len(reqs[0].Body) != 0 {
		t.Errorf("reset sent a body: %q", reqs[0].Body)
	}
}

func TestResetRiskScoreNormalisesUppercaseID(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.client.ResetRiskScore(testContext(t), strings.ToUpper(aliceID)); err != nil {
		t.Fatalf("ResetRiskScore: %v", err)
	}
	if n := f.fake.Resets(aliceID); n != 1 {
		t.Errorf("%d resets of %s, want 1", n, aliceID)
	}
}

func TestResetWithoutPIIReadSucceedsUnverified(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.Deny(cfapitest.OpGetUserRisk)

	res, err := f.client.ResetRiskScore(testContext(t), aliceID)
	if err != nil {
		t.Fatalf("ResetRiskScore: %v, want success without verification", err)
	}
	if res.Verified || res.Ambiguous {
		t.Errorf("result %+v, want unverified and not ambiguous", res)
	}
	pe := wantAs[*PermissionError](t, res.VerifyErr)
	if pe.Permission != PermZeroTrustPIIRead {
		t.Errorf("VerifyErr names %q, want %q", pe.Permission, PermZeroTrustPIIRead)
	}
	if n := f.fake.Resets(aliceID); n != 1 {
		t.Errorf("%d resets, want 1", n)
	}
}

// TestAmbiguousResetIsSettledByReading covers answers after which Cloudflare
// may have reset: last_reset_time decides. An answered failure (500, 502,
// 503, an unreadable 200) is read once; an unanswered one (a timeout, a
// dropped connection, a 504) is watched for the settle window, as
// Cloudflare may still be working on it. The POST is repeated only when the
// reset still does not show and the failure is one worth retrying (502,
// 503, 504, a dropped connection). A reset that never shows ends not
// applied when every attempt was answered, unconfirmed otherwise.
func TestAmbiguousResetIsSettledByReading(t *testing.T) {
	tests := []struct {
		name    string
		fault   cfapitest.Fault
		more    []cfapitest.Fault // faults for the attempts after the first
		opts    []Option
		timeout time.Duration // caller's deadline, 0 for none
		wantErr error         // underlying error when not applied
		// earlier is a previous reset on record, and skew how far the
		// fake's clock trails ours.
		earlier time.Duration
		skew    time.Duration
		// retried: not shown, so sent again; the last attempt succeeds.
		retried bool
		// inFlight: the first attempt went unanswered, so its outcome
		// may have been read more than once.
		inFlight bool
		// unconfirmed: never shown, and some attempt went unanswered.
		unconfirmed bool
	}{
		{name: "502 applied", fault: cfapitest.Fault{Status: http.StatusBadGateway, ApplyFirst: true}},
		{name: "500 applied", fault: cfapitest.Fault{Status: http.StatusInternalServerError, ApplyFirst: true}},
		{name: "504 applied", fault: cfapitest.Fault{Status: http.StatusGatewayTimeout, ApplyFirst: true}},
		{name: "connection dropped applied", fault: cfapitest.Fault{CloseConn: true, ApplyFirst: true}},
		{name: "timeout applied", fault: cfapitest.Fault{Hang: true, ApplyFirst: true}, timeout: 300 * time.Millisecond},
		{name: "html 502 applied", fault: cfapitest.Fault{Status: http.StatusBadGateway, Body: htmlPage, Header: htmlHeader, OffSpec: true, ApplyFirst: true}},
		{name: "200 truncated applied", fault: cfapitest.Fault{Status: http.StatusOK, Body: `{"success":tr`, OffSpec: true, ApplyFirst: true}},
		{name: "502 applied, server clock behind", fault: cfapitest.Fault{Status: http.StatusBadGateway, ApplyFirst: true}, skew: 1500 * time.Millisecond},
		// Cloudflare applies these after the client stopped waiting: the
		// first read shows nothing, a later one within the window does.
		{name: "timeout applied late", fault: cfapitest.Fault{Hang: true, ApplyAfter: 150 * time.Millisecond},
			timeout: 50 * time.Millisecond, opts: []Option{WithSettleWindow(5 * time.Second)}, inFlight: true},
		{name: "504 applied late", fault: cfapitest.Fault{Status: http.StatusGatewayTimeout, ApplyAfter: 100 * time.Millisecond},
			opts: []Option{WithSettleWindow(5 * time.Second)}, inFlight: true},
		{name: "connection dropped applied late", fault: cfapitest.Fault{CloseConn: true, ApplyAfter: 100 * time.Millisecond},
			opts: []Option{WithSettleWindow(5 * time.Second)}, inFlight: true},
		{name: "502 not applied", fault: cfapitest.Fault{Status: http.StatusBadGateway}, retried: true},
		{name: "502 not applied, earlier reset", fault: cfapitest.Fault{Status: http.StatusBadGateway}, earlier: time.Hour, retried: true},
		{name: "502 not applied, reset 3s before", fault: cfapitest.Fault{Status: http.StatusBadGateway}, earlier: 3 * time.Second, retried: true},
		{name: "503 not applied", fault: cfapitest.Fault{Status: http.StatusServiceUnavailable}, retried: true},
		{name: "504 not applied", fault: cfapitest.Fault{Status: http.StatusGatewayTimeout}, retried: true, inFlight: true},
		{name: "connection dropped not applied", fault: cfapitest.Fault{CloseConn: true}, retried: true, inFlight: true},
		{name: "524 not applied", fault: cfapitest.Fault{Status: 524, Body: htmlPage, Header: htmlHeader, OffSpec: true},
			inFlight: true, unconfirmed: true},
		{name: "500 not applied", fault: cfapitest.Fault{Status: http.StatusInternalServerError}, wantErr: &APIError{}},
		{name: "500 not applied, earlier reset", fault: cfapitest.Fault{Status: http.StatusInternalServerError}, wantErr: &APIError{}, earlier: time.Hour},
		{name: "timeout not applied", fault: cfapitest.Fault{Hang: true}, timeout: 300 * time.Millisecond, wantErr: context.DeadlineExceeded,
			inFlight: true, unconfirmed: true},
		// The first attempt may still be applied, whatever the re-send
		// is answered.
		{name: "504, then 500 not applied", fault: cfapitest.Fault{Status: http.StatusGatewayTimeout},
			more: []cfapitest.Fault{{Status: http.StatusInternalServerError}}, wantErr: &APIError{}, inFlight: true, unconfirmed: true},
		{name: "504, then 429 beyond the budget", fault: cfapitest.Fault{Status: http.StatusGatewayTimeout},
			more: []cfapitest.Fault{{Status: http.StatusTooManyRequests, RetryAfter: "30"}}, wantErr: &RateLimitError{}, inFlight: true, unconfirmed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, tt.opts...)
			f.fake.Inject(cfapitest.OpResetRisk, append([]cfapitest.Fault{tt.fault}, tt.more...)...)
			if tt.earlier > 0 {
				last := time.Now().Add(-tt.earlier)
				f.fake.AddUser(cfapitest.FakeUser{ID: aliceID, Email: aliceEmail, RiskLevel: "high", LastResetTime: &last})
			}
			if tt.skew > 0 {
				f.fake.SetClock(func() time.Time { return time.Now().Add(-tt.skew) })
			}
			ctx := testContext(t)
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}

			res, err := f.client.ResetRiskScore(ctx, aliceID)

			wantCalls := 1 + len(tt.more)
			if tt.retried {
				wantCalls = 2 // and at least one read to settle, one to verify
			}
			if calls := f.fake.Calls(cfapitest.OpResetRisk); calls != wantCalls {
				t.Errorf("reset sent %d times, want %d", calls, wantCalls)
			}
			if reads := f.fake.Calls(cfapitest.OpGetUserRisk); reads != wantCalls && !(tt.inFlight && reads > wantCalls) {
				t.Errorf("outcome read %d times, want %d", reads, wantCalls)
			}
			assertNoSecrets(t, err)
			if tt.retried {
				if err != nil || !res.Verified || res.Ambiguous {
					t.Fatalf("ResetRiskScore = %+v, %v; want a verified reset on the second attempt", res, err)
				}
				if n := f.fake.Resets(aliceID); n != 1 {
					t.Errorf("%d resets, want 1", n)
				}
				return
			}
			if tt.fault.ApplyFirst || tt.fault.ApplyAfter > 0 {
				if err != nil {
					t.Fatalf("ResetRiskScore: %v, want success settled by reading", err)
				}
				if !res.Verified || !res.Ambiguous {
					t.Errorf("result %+v, want Verified and Ambiguous", res)
				}
				if n := f.fake.Resets(aliceID); n != 1 {
					t.Errorf("%d resets, want 1", n)
				}
				return
			}
			assertNotShown(t, err, tt.unconfirmed)
			switch want := tt.wantErr.(type) {
			case *APIError:
				status := tt.fault.Status // of the last attempt
				if len(tt.more) > 0 {
					status = tt.more[len(tt.more)-1].Status
				}
				if apiErr := wantAs[*APIError](t, err); apiErr.StatusCode != status {
					t.Errorf("wrapped status %d, want %d", apiErr.StatusCode, status)
				}
			case *RateLimitError:
				wantAs[*RateLimitError](t, err)
			case nil:
			default:
				if !errors.Is(err, want) {
					t.Errorf("error %v does not wrap %v", err, want)
				}
			}
		})
	}
}

// assertNotShown checks the error of a reset that never showed on the
// user: not applied when Cloudflare answered every attempt, unconfirmed
// (and so unknown, never "not applied") when some attempt went unanswered.
func assertNotShown(t *testing.T, err error, unconfirmed bool) {
	t.Helper()
	if !unconfirmed {
		if !errors.Is(err, ErrResetNotApplied) || errors.Is(err, ErrResetOutcomeUnknown) {
			t.Fatalf("error %v, want ErrResetNotApplied", err)
		}
		if !strings.Contains(err.Error(), "not applied") {
			t.Errorf("error %q does not say the reset was not applied", err)
		}
		return
	}
	if !errors.Is(err, ErrResetUnconfirmed) || !errors.Is(err, ErrResetOutcomeUnknown) || errors.Is(err, ErrResetNotApplied) {
		t.Fatalf("error %v, want ErrResetUnconfirmed (an ErrResetOutcomeUnknown), not ErrResetNotApplied", err)
	}
}

func TestAmbiguousResetWithUnreadableOutcome(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.Inject(cfapitest.OpResetRisk, cfapitest.Fault{Status: http.StatusBadGateway, ApplyFirst: true})
	f.fake.Deny(cfapitest.OpGetUserRisk)

	_, err := f.client.ResetRiskScore(testContext(t), aliceID)
	if !errors.Is(err, ErrResetOutcomeUnknown) {
		t.Fatalf("error %v, want ErrResetOutcomeUnknown", err)
	}
	if pe := wantAs[*PermissionError](t, err); pe.Permission != PermZeroTrustPIIRead {
		t.Errorf("error names %q, want %q", pe.Permission, PermZeroTrustPIIRead)
	}
	if calls := f.fake.Calls(cfapitest.OpResetRisk); calls != 1 {
		t.Errorf("reset sent %d times, want once", calls)
	}
}

func TestResetRetriesRateLimitAndUnsentRequests(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.Inject(cfapitest.OpResetRisk,
		cfapitest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "0"},
		cfapitest.Fault{Status: http.StatusTooManyRequests},
	)
	res, err := f.client.ResetRiskScore(testContext(t), aliceID)
	if err != nil {
		t.Fatalf("ResetRiskScore: %v", err)
	}
	if !res.Verified || res.Ambiguous {
		t.Errorf("result %+v, want verified, not ambiguous", res)
	}
	if calls := f.fake.Calls(cfapitest.OpResetRisk); calls != 3 {
		t.Errorf("reset sent %d times, want 3 (two 429s, then success)", calls)
	}
	if n := f.fake.Resets(aliceID); n != 1 {
		t.Errorf("%d resets applied, want 1", n)
	}
}

// TestInvalidUserIDSendsNothing feeds ids that are not canonical UUIDs,
// including path tricks, to every call that takes one.
func TestInvalidUserIDSendsNothing(t *testing.T) {
	ids := []string{
		"",
		"alice",
		"../../x",
		"%2e%2e",
		"%2e%2e%2f%2e%2e%2fuser%2ftokens%2fverify",
		"..%2F..%2Fx",
		aliceID + "x",
		aliceID + "/reset",
		aliceID + "/../../../user/tokens/verify",
		aliceID[:35] + "/",
		aliceID[:35] + "?",
		"../../" + aliceID,
		"{" + aliceID + "}",
		"urn:uuid:" + aliceID,
		strings.ReplaceAll(aliceID, "-", ""),
		" " + aliceID,
		"f2108713-1206-4e84-8b80-0e71a6a1c6zz",
	}
	f := newFixture(t, nil)
	for _, id := range ids {
		if _, err := f.client.ResetRiskScore(testContext(t), id); !errors.Is(err, ErrInvalidUserID) {
			t.Errorf("ResetRiskScore(%q): error %v, want ErrInvalidUserID", id, err)
		}
		if _, err := f.client.GetUserRisk(testContext(t), id); !errors.Is(err, ErrInvalidUserID) {
			t.Errorf("GetUserRisk(%q): error %v, want ErrInvalidUserID", id, err)
		}
	}
	if n := f.srv.RequestCount(); n != 0 {
		t.Errorf("%d requests sent for invalid ids, want none: %v", n, operations(f.srv.Requests()))
	}
}

func TestGetUserRisk(t *testing.T) {
	f := newFixture(t, nil)
	reset := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	f.fake.AddUser(cfapitest.FakeUser{ID: aliceID, Email: aliceEmail, Name: "Alice", RiskLevel: "medium", LastResetTime: &reset,
		Events: []cfapitest.FakeEvent{{ID: "e1", Name: "Impossible travel", RiskLevel: "medium", Timestamp: reset.Add(time.Hour)}}})

	risk, err := f.client.GetUserRisk(testContext(t), aliceID)
	if err != nil {
		t.Fatalf("GetUserRisk: %v", err)
	}
	if risk.ID != aliceID || risk.Email != aliceEmail || risk.Name != "Alice" || risk.RiskLevel != "medium" {
		t.Errorf("risk %+v", risk)
	}
	if risk.LastResetTime == nil || !risk.LastResetTime.Equal(reset) {
		t.Errorf("LastResetTime %v, want %v", risk.LastResetTime, reset)
	}
	if len(risk.Events) != 1 || risk.Events[0].Name != "Impossible travel" || !risk.Events[0].Timestamp.Equal(reset.Add(time.Hour)) {
		t.Errorf("events %+v", risk.Events)
	}
}

func TestGetUserRiskOfUnknownUser(t *testing.T) {
	f := newFixture(t, nil)
	_, err := f.client.GetUserRisk(testContext(t), "00000000-0000-4000-8000-000000000000")
	apiErr := wantAs[*APIError](t, err)
	if apiErr.StatusCode != http.StatusNotFound || !apiErr.HasCode(cfapitest.CodeUserNotFound) {
		t.Errorf("error %v, want 404 with code %d", apiErr, cfapitest.CodeUserNotFound)
	}
	if calls := f.fake.Calls(cfapitest.OpGetUserRisk); calls != 1 {
		t.Errorf("%d calls, want 1: a 404 is not retried", calls)
	}
}

// A reset that keeps failing with 503, each time proved not applied, is
// sent again only within the retry budget, and ends as not applied.
func TestResetNotAppliedRetriesWithinBudget(t *testing.T) {
	f := newFixture(t, nil, WithRetryBudget(50*time.Millisecond), WithBackoff(5*time.Millisecond, 10*time.Millisecond))
	for range 100 {
		f.fake.Inject(cfapitest.OpResetRisk, cfapitest.Fault{Status: http.StatusServiceUnavailable})
	}
	_, err := f.client.ResetRiskScore(testContext(t), aliceID)
	if !errors.Is(err, ErrResetNotApplied) {
		t.Fatalf("error %v, want ErrResetNotApplied", err)
	}
	calls := f.fake.Calls(cfapitest.OpResetRisk)
	if calls < 2 || calls > 20 {
		t.Errorf("reset sent %d times; want a few retries bounded by the 50ms budget", calls)
	}
	if n := f.fake.Resets(aliceID); n != 0 {
		t.Errorf("%d resets, want 0", n)
	}
}
