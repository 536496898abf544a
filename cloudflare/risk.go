package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// clockSkew is how far Cloudflare's clock may trail ours when comparing
// last_reset_time with the moment we sent a reset.
const clockSkew = 2 * time.Second

// settleTimeout bounds the read that settles an ambiguous reset when the
// caller's context is already done: the outcome must still be learned.
const settleTimeout = 10 * time.Second

// ResetResult is the outcome of a successful reset.
type ResetResult struct {
	// Verified is true when a read of the user's risk showed a
	// last_reset_time at or after the moment just before the reset was
	// sent (within 2 s of clock skew).
	Verified bool
	// Ambiguous is true when the reset's own answer was unclear (timeout,
	// 5xx, dropped connection) and success was established by reading
	// last_reset_time instead.
	Ambiguous bool
	// LastResetTime is what the verification read showed; zero if unread.
	LastResetTime time.Time
	// CFRay identifies the reset's answer, when there was one.
	CFRay string
	// VerifyErr says why a clear success could not be verified (for
	// example a *PermissionError when the token lacks Zero Trust PII
	// Read); nil when Verified.
	VerifyErr error
}

// UserRisk is a user's risk score details.
type UserRisk struct {
	ID, Email, Name string
	RiskLevel       string // "low", "medium", "high", or "" when none
	Events          []RiskEvent
	LastResetTime   *time.Time
}

// RiskEvent is one event that raised a user's risk.
type RiskEvent struct {
	ID, Name, RiskLevel string
	Timestamp           time.Time
}

// ResetRiskScore clears a user's risk score (needs Zero Trust Write) and
// verifies it by reading last_reset_time (needs Zero Trust PII Read).
//
// When the reset's answer is ambiguous, the outcome is read from
// last_reset_time before anything else. Only when that read shows the reset
// was not applied, and the failure is one worth retrying (502, 503, 504, a
// dropped connection), is it sent again, within the retry budget. A reset
// that ends not applied returns an error wrapping ErrResetNotApplied and
// the last failure; when the read fails too, ErrResetOutcomeUnknown.
func (c *Client) ResetRiskScore(ctx context.Context, userID string) (*ResetResult, error) {
	id, err := parseUserID(userID)
	if err != nil {
		return nil, err
	}
	sentAfter := time.Now()
	deadline := sentAfter.Add(c.retryBudget)
	for n := 0; ; n++ {
		res, err := c.do(ctx, request{
			method:     http.MethodPost,
			url:        c.endpoint(nil, "accounts", c.accountID, "zt_risk_scoring", id, "reset"),
			permission: PermZeroTrustWrite,
			unsafe:     true,
			deadline:   deadline,
		})
		var amb *ambiguousError
		if !errors.As(err, &amb) {
			return c.resetDone(ctx, id, sentAfter, res, err)
		}
		result, err := c.settleReset(ctx, id, sentAfter, amb.err)
		if err == nil || !errors.Is(err, ErrResetNotApplied) || !amb.retryable {
			return result, err
		}
		// The read-back proved the attempt was not applied, so sending it
		// again cannot reset twice.
		wait := c.backoff(n)
		if time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("%w (stopped waiting to retry: %w)", err, serr)
		}
	}
}

// resetDone completes a reset whose answer was clear: on success the user
// is read back to verify it.
func (c *Client) resetDone(ctx context.Context, id string, sentAfter time.Time, res *response, err error) (*ResetResult, error) {
	if err != nil {
		return nil, fmt.Errorf("resetting the risk score of %s: %w", id, err)
	}
	result := &ResetResult{CFRay: res.cfRay}
	risk, err := c.GetUserRisk(ctx, id)
	if err != nil {
		result.VerifyErr = err
		return result, nil
	}
	if risk.LastResetTime != nil {
		result.LastResetTime = *risk.LastResetTime
	}
	result.Verified = resetSince(risk.LastResetTime, sentAfter)
	if !result.Verified {
		result.VerifyErr = fmt.Errorf("%w: last_reset_time %s is before the reset was sent", ErrResetNotVisible, formatTime(risk.LastResetTime))
	}
	return result, nil
}

// settleReset decides an ambiguous reset by reading last_reset_time.
func (c *Client) settleReset(ctx context.Context, id string, sentAfter time.Time, resetErr error) (*ResetResult, error) {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
		defer cancel()
	}
	risk, err := c.GetUserRisk(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: the reset of %s failed ambiguously (%w), and reading last_reset_time failed: %w",
			ErrResetOutcomeUnknown, id, resetErr, err)
	}
	if !resetSince(risk.LastResetTime, sentAfter) {
		return nil, fmt.Errorf("%w to %s: last_reset_time is %s, before the request: %w",
			ErrResetNotApplied, id, formatTime(risk.LastResetTime), resetErr)
	}
	return &ResetResult{Verified: true, Ambiguous: true, LastResetTime: *risk.LastResetTime}, nil
}

func resetSince(last *time.Time, sentAfter time.Time) bool {
	return last != nil && !last.Before(sentAfter.Add(-clockSkew))
}

func formatTime(t *time.Time) string {
	if t == nil {
		return "unset"
	}
	return t.UTC().Format(time.RFC3339)
}

type riskResult struct {
	Email     string  `json:"email"`
	Name      string  `json:"name"`
	RiskLevel *string `json:"risk_level"`
	Events    []struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		RiskLevel string    `json:"risk_level"`
		Timestamp time.Time `json:"timestamp"`
	} `json:"events"`
	LastResetTime *time.Time `json:"last_reset_time"`
}

// GetUserRisk reads a user's risk details (needs Zero Trust PII Read).
func (c *Client) GetUserRisk(ctx context.Context, userID string) (*UserRisk, error) {
	id, err := parseUserID(userID)
	if err != nil {
		return nil, err
	}
	req := request{
		method:     http.MethodGet,
		url:        c.endpoint(nil, "accounts", c.accountID, "zt_risk_scoring", id),
		permission: PermZeroTrustPIIRead,
	}
	res, err := c.do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("reading the risk of %s: %w", id, err)
	}
	var rr riskResult
	if err := decodeResult(req, res, &rr); err != nil {
		return nil, fmt.Errorf("reading the risk of %s: %w", id, err)
	}
	risk := &UserRisk{ID: id, Email: rr.Email, Name: rr.Name, LastResetTime: rr.LastResetTime}
	if rr.RiskLevel != nil {
		risk.RiskLevel = *rr.RiskLevel
	}
	for _, e := range rr.Events {
		risk.Events = append(risk.Events, RiskEvent{ID: e.ID, Name: e.Name, RiskLevel: e.RiskLevel, Timestamp: e.Timestamp})
	}
	return risk, nil
}

// decodeResult unmarshals the envelope's result.
func decodeResult(req request, res *response, v any) error {
	if err := json.Unmarshal(res.env.Result, v); err != nil {
		return &BodyError{
			StatusCode: res.status, CFRay: res.cfRay, Reason: "unexpected result",
			Method: req.method, Path: req.url.Path, Err: err,
		}
	}
	return nil
}

// parseUserID accepts only the canonical 36-character UUID form and returns
// it in lower case. uuid.Parse alone also takes braces, urn:uuid: and
// 32-hex forms.
func parseUserID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("%w: %q", ErrInvalidUserID, truncate(s, 64))
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q", ErrInvalidUserID, truncate(s, 64))
	}
	return u.String(), nil
}
