package cloudflare

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"risk-reset-bot/internal/cfapitest"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"99999999999999", maxRetryAfter * time.Second, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestBackoffGrowsWithinBounds(t *testing.T) {
	c := &Client{backoffBase: 10 * time.Millisecond, backoffMax: 80 * time.Millisecond}
	for n, ceiling := range []time.Duration{10, 20, 40, 80, 80, 80} {
		ceiling *= time.Millisecond
		for range 50 {
			if d := c.backoff(n); d < ceiling/2 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, ceiling/2, ceiling)
			}
		}
	}
}

// TestAttemptPastTheDeadlineIsNotSent: an attempt that would start once
// the deadline has passed is not made, and says so: it is never taken for
// a reset Cloudflare may have received. The first request teaches the
// client that its transport reports trace events.
func TestAttemptPastTheDeadlineIsNotSent(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.client.GetUserRisk(testContext(t), aliceID); err != nil {
		t.Fatalf("GetUserRisk: %v", err)
	}
	for _, ahead := range []time.Duration{-time.Second, time.Microsecond} {
		_, err := f.client.do(testContext(t), request{
			method: http.MethodPost,
			url:    f.client.endpoint(nil, "accounts", testAccount, "zt_risk_scoring", aliceID, "reset"),
			unsafe: true, deadline: time.Now().Add(ahead),
		})
		var amb *ambiguousError
		if !errors.Is(err, ErrNotSent) || errors.As(err, &amb) {
			t.Errorf("deadline %v ahead: error %v (%T), want ErrNotSent and not ambiguous", ahead, err, err)
		}
	}
	if n := f.fake.Calls(cfapitest.OpResetRisk); n != 0 {
		t.Errorf("%d resets reached Cloudflare, want none", n)
	}
}
