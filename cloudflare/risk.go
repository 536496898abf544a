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

// ResetResult is the outcome of a successful reset.
type ResetResult struct {
	// Verified is true when a read of the user's risk showed a
	// last_reset_time at or after the moment just before the reset was
	// sent (within 2 s of clock skew).
	Verified bool
	// Ambiguous is true when the reset's own answer was unclear (timeout,
	// 5xx, dropped connection) and success was established by reading
	// last_reset_time instead, possibly some time later (see
	// WithSettleWindow).
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
// last_reset_time before anything else. After an answered failure (500,
// 502, 503, an unreadable 2xx) one read decides. After an unanswered one (a
// timeout or dropped connection once the request was sent, a 504)
// Cloudflare may still be working on the request, so the user is read
// again, with backoff, until the reset shows or the settle window ends.
// Only when it still does not show, and the failure is one worth retrying
// (502, 503, 504, a dropped connection), is the reset sent again, no sooner
// than Retry-After asks and within the retry budget.
//
// A reset that never shows returns an error wrapping the last failure and
// ErrResetNotApplied when Cloudflare answered every attempt, or
// ErrResetUnconfirmed when some attempt went unanswered (it may still be
// applied); when reading fails too, ErrResetOutcomeUnknown.
//
// Every attempt and the verifying read end within the retry budget; the
// reads that settle an ambiguous answer may run on for at most the settle
// window past it, even when ctx has ended, because the outcome must be
// learned. So the call takes at most the retry budget plus the settle
// window.
func (c *Client) ResetRiskScore(ctx context.Context, userID string) (*ResetResult, error) {
	id, err := parseUserID(userID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rc := &resetCall{id: id, sentAfter: now, deadline: now.Add(c.retryBudget)}
	for n := 0; ; n++ {
		res, err := c.do(ctx, request{
			method:     http.MethodPost,
			url:        c.endpoint(nil, "accounts", c.accountID, "zt_risk_scoring", id, "reset"),
			permission: PermZeroTrustWrite,
			unsafe:     true,
			deadline:   rc.deadline,
		})
		var amb *ambiguousError
		if !errors.As(err, &amb) {
			return c.resetDone(ctx, rc, res, err)
		}
		rc.inFlight = rc.inFlight || amb.inFlight
		result, err := c.settleReset(ctx, rc, amb.err, amb.inFlight)
		if !errors.Is(err, ErrResetNotApplied) && !errors.Is(err, ErrResetUnconfirmed) {
			return result, err
		}
		if err := c.waitToResend(ctx, rc, n, amb, err); err != nil {
			return nil, err
		}
	}
}

// resetCall is what one ResetRiskScore call knows across its attempts.
type resetCall struct {
	id        string
	sentAfter time.Time // just before the first attempt
	deadline  time.Time // the end of the retry budget
	// inFlight: some attempt went unanswered, so it may still be applied.
	inFlight bool
}

// notShown is the error of a reset that reading does not show.
func (rc *resetCall) notShown(risk *UserRisk, cause error) error {
	if rc.inFlight {
		return fmt.Errorf("%w (user %s, last_reset_time still %s): %w",
			ErrResetUnconfirmed, rc.id, formatTime(risk.LastResetTime), cause)
	}
	return fmt.Errorf("%w to %s: last_reset_time is %s, before the request: %w",
		ErrResetNotApplied, rc.id, formatTime(risk.LastResetTime), cause)
}

// waitToResend waits to send again a reset that reading did not show, and
// returns nil, or notShown when it must not be sent again. Re-sending is
// safe in effect: the earlier attempt, applied late, and the new one both
// only clear the score, and the read after the last one verifies.
func (c *Client) waitToResend(ctx context.Context, rc *resetCall, n int, amb *ambiguousError, notShown error) error {
	if !amb.retryable || ctx.Err() != nil {
		return notShown
	}
	// Retry-After is a minimum, as in do; the reads that settled the
	// attempt have already waited part of it.
	wait := max(c.backoff(n), amb.retryAfter-time.Since(amb.failedAt))
	if !c.retryFits(wait, rc.deadline) {
		return notShown
	}
	if err := c.sleep(ctx, wait); err != nil {
		return fmt.Errorf("%w (stopped waiting to retry: %w)", notShown, err)
	}
	return nil
}

// resetDone completes a reset whose answer was clear: on success the user
// is read back, within the call's deadline, to verify it.
func (c *Client) resetDone(ctx context.Context, rc *resetCall, res *response, err error) (*ResetResult, error) {
	if err != nil && rc.inFlight {
		// This attempt failed clearly, but an earlier one went unanswered
		// and may have been applied since: reading decides.
		return c.settleReset(ctx, rc, err, false)
	}
	if err != nil {
		return nil, fmt.Errorf("resetting the risk score of %s: %w", rc.id, err)
	}
	result := &ResetResult{CFRay: res.cfRay}
	verifyCtx, cancel := context.WithDeadline(ctx, rc.deadline)
	defer cancel()
	risk, err := c.GetUserRisk(verifyCtx, rc.id)
	if err != nil {
		result.VerifyErr = err
		return result, nil
	}
	if risk.LastResetTime != nil {
		result.LastResetTime = *risk.LastResetTime
	}
	result.Verified = resetSince(risk.LastResetTime, rc.sentAfter)
	if !result.Verified {
		result.VerifyErr = fmt.Errorf("%w: last_reset_time %s is before the reset was sent", ErrResetNotVisible, formatTime(risk.LastResetTime))
	}
	return result, nil
}

// settleReset decides an ambiguous attempt by reading last_reset_time
// (see watchReset).
func (c *Client) settleReset(ctx context.Context, rc *resetCall, cause error, inFlight bool) (*ResetResult, error) {
	risk, err := c.watchReset(ctx, rc, inFlight)
	if err != nil {
		return nil, fmt.Errorf("%w: the reset of %s failed ambiguously (%w), and reading last_reset_time failed: %w",
			ErrResetOutcomeUnknown, rc.id, cause, err)
	}
	if !resetSince(risk.LastResetTime, rc.sentAfter) {
		return nil, rc.notShown(risk, cause)
	}
	return &ResetResult{Verified: true, Ambiguous: true, LastResetTime: *risk.LastResetTime}, nil
}

// watchReset reads the user after an ambiguous attempt. After an answered
// one the first read is final. After one still in flight, a read that does
// not show the reset is repeated, with backoff, until one does or the
// settle window ends. It returns the last read that succeeded, and an error
// only when none did.
func (c *Client) watchReset(ctx context.Context, rc *resetCall, inFlight bool) (*UserRisk, error) {
	end := time.Now().Add(c.settleWindow)
	if late := rc.deadline.Add(c.settleWindow); late.Before(end) {
		end = late
	}
	// The outcome must be learned even when the caller has given up, so
	// the window bounds these reads, not ctx.
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), end)
	defer cancel()
	var last *UserRisk
	for n := 0; ; n++ {
		risk, err := c.GetUserRisk(ctx, rc.id)
		if err != nil {
			if last == nil {
				return nil, err
			}
			return last, nil
		}
		last = risk
		if !inFlight || resetSince(risk.LastResetTime, rc.sentAfter) {
			return risk, nil
		}
		wait := c.backoff(n)
		if time.Now().Add(wait).After(end) || c.sleep(ctx, wait) != nil {
			return risk, nil
		}
	}
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
