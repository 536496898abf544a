package cloudflare

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"risk-reset-bot/internal/cfapitest"
)

// waits records the waits the client asks for between attempts and while
// settling, in order.
type waits struct {
	mu sync.Mutex
	ds []time.Duration
}

func (w *waits) record(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ds = append(w.ds, d)
}

func (w *waits) longest() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var m time.Duration
	for _, d := range w.ds {
		m = max(m, d)
	}
	return m
}

// TestResetHonoursRetryAfterOn5xx: a 502, 503 or 504 on the reset that
// asks for a wait is re-sent no sooner than it asks, and not at all when
// the wait would pass the retry budget.
func TestResetHonoursRetryAfterOn5xx(t *testing.T) {
	tests := []struct {
		name       string
		fault      cfapitest.Fault
		budget     time.Duration
		wantCalls  int
		wantWait   time.Duration // the longest wait asked for, at least
		wantErr    error         // nil: the re-send succeeds
		noLongWait bool          // gave up without waiting for Retry-After
		// readDelay slows the read that settles the first attempt; the
		// wait after it is then what is left of Retry-After, at most
		// maxWait.
		readDelay, maxWait time.Duration
	}{
		{name: "503 Retry-After within the budget", fault: cfapitest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "1"},
			budget: 5 * time.Second, wantCalls: 2, wantWait: time.Second},
		{name: "503 Retry-After partly spent settling", fault: cfapitest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "1"},
			budget: 5 * time.Second, wantCalls: 2, wantWait: time.Second, readDelay: 600 * time.Millisecond, maxWait: 500 * time.Millisecond},
		{name: "503 Retry-After beyond the budget", fault: cfapitest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "3"},
			budget: 2 * time.Second, wantCalls: 1, wantErr: ErrResetNotApplied, noLongWait: true},
		{name: "502 Retry-After beyond the budget", fault: cfapitest.Fault{Status: http.StatusBadGateway, RetryAfter: "3"},
			budget: 2 * time.Second, wantCalls: 1, wantErr: ErrResetNotApplied, noLongWait: true},
		{name: "504 Retry-After beyond the budget", fault: cfapitest.Fault{Status: http.StatusGatewayTimeout, RetryAfter: "3"},
			budget: 2 * time.Second, wantCalls: 1, wantErr: ErrResetUnconfirmed, noLongWait: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []Option{WithRetryBudget(tt.budget)}
			if tt.readDelay > 0 {
				opts = append(opts, WithSettleWindow(tt.budget)) // room for the slow read
			}
			f := newFixture(t, nil, opts...)
			f.fake.Inject(cfapitest.OpResetRisk, tt.fault)
			if tt.readDelay > 0 {
				f.fake.Inject(cfapitest.OpGetUserRisk, cfapitest.Fault{Delay: tt.readDelay})
			}
			var w waits
			f.client.onWait = w.record

			res, err := f.client.ResetRiskScore(testContext(t), aliceID)

			if calls := f.fake.Calls(cfapitest.OpResetRisk); calls != tt.wantCalls {
				t.Errorf("reset sent %d times, want %d", calls, tt.wantCalls)
			}
			if got := w.longest(); tt.maxWait > 0 && got > tt.maxWait {
				t.Errorf("waited %v after a %v read; want what is left of Retry-After, at most %v", got, tt.readDelay, tt.maxWait)
			}
			if got := w.longest(); tt.noLongWait && got >= time.Second {
				t.Errorf("longest wait %v; want none for a Retry-After that passes the budget", got)
			}
			if gap := resendGap(f.srv.Requests()); gap < tt.wantWait {
				t.Errorf("reset re-sent %v after the first attempt; want at least the Retry-After, %v", gap, tt.wantWait)
			}
			if tt.wantErr == nil {
				if err != nil || !res.Verified {
					t.Fatalf("ResetRiskScore = %+v, %v; want a verified reset", res, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if n := f.fake.Resets(aliceID); n != 0 {
				t.Errorf("%d resets, want 0", n)
			}
		})
	}
}

// TestCallsEndWithinTheirBudget: against a Cloudflare that never answers,
// with an HTTP client that has no timeout of its own, every call returns
// within its retry budget, plus the settle window when a reset's outcome
// must be read back. The test's own deadline, derived from the options,
// catches a call that runs on.
func TestCallsEndWithinTheirBudget(t *testing.T) {
	const (
		budget = 300 * time.Millisecond
		window = 200 * time.Millisecond
		slack  = 2 * time.Second // scheduling on a loaded machine
	)
	hang := cfapitest.Fault{Hang: true}
	tests := []struct {
		name      string
		resets    []cfapitest.Fault
		reads     []cfapitest.Fault
		getRisk   bool // call GetUserRisk instead of ResetRiskScore
		limit     time.Duration
		wantErr   error // nil: success, unverified
		verifyErr bool
	}{
		{name: "reset never answered", resets: repeat(hang, 20), limit: budget + window, wantErr: ErrResetUnconfirmed},
		{name: "reset answered, verify read never answered", reads: repeat(hang, 20), limit: budget, verifyErr: true},
		{name: "reset 502, settle read never answered", resets: []cfapitest.Fault{{Status: http.StatusBadGateway}},
			reads: repeat(hang, 20), limit: budget + window, wantErr: ErrResetOutcomeUnknown},
		{name: "risk read never answered", reads: repeat(hang, 20), getRisk: true, limit: budget, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, WithRetryBudget(budget), WithSettleWindow(window))
			f.fake.Inject(cfapitest.OpResetRisk, tt.resets...)
			f.fake.Inject(cfapitest.OpGetUserRisk, tt.reads...)
			limit, cancel := context.WithTimeout(context.Background(), tt.limit+slack)
			defer cancel()
			type answer struct {
				res *ResetResult
				err error
			}
			done := make(chan answer, 1)
			ctx := testContext(t)
			go func() {
				if tt.getRisk {
					_, err := f.client.GetUserRisk(ctx, aliceID)
					done <- answer{err: err}
					return
				}
				res, err := f.client.ResetRiskScore(ctx, aliceID)
				done <- answer{res, err}
			}()

			var a answer
			select {
			case a = <-done:
			case <-limit.Done():
				t.Fatalf("the call ran past its budget (%v) and settle window (%v)", budget, window)
			}
			switch {
			case tt.wantErr != nil:
				if !errors.Is(a.err, tt.wantErr) {
					t.Errorf("error %v, want %v", a.err, tt.wantErr)
				}
			case a.err != nil || a.res.Verified || (tt.verifyErr && a.res.VerifyErr == nil):
				t.Errorf("ResetRiskScore = %+v, %v; want an accepted, unverified reset", a.res, a.err)
			}
		})
	}
}

func repeat(f cfapitest.Fault, n int) []cfapitest.Fault {
	out := make([]cfapitest.Fault, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// resendGap is how long after the first reset POST the second arrived;
// 0 when there was no second.
func resendGap(reqs []cfapitest.RecordedRequest) time.Duration {
	var resets []time.Time
	for _, r := range reqs {
		if r.Method == http.MethodPost {
			resets = append(resets, r.At)
		}
	}
	if len(resets) < 2 {
		return 0
	}
	return resets[1].Sub(resets[0])
}
