package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Token scopes: which verify endpoint answered.
const (
	ScopeAccount = "account"
	ScopeUser    = "user"
)

// TokenStatus describes the API token in use.
type TokenStatus struct {
	ID        string
	Status    string // "active", "disabled" or "expired"
	ExpiresOn *time.Time
	Scope     string // ScopeAccount or ScopeUser
}

// Active reports whether Cloudflare accepts the token.
func (s *TokenStatus) Active() bool { return s.Status == "active" }

type tokenResult struct {
	ID        string     `json:"id"`
	Status    string     `json:"status"`
	ExpiresOn *time.Time `json:"expires_on"`
}

// VerifyToken checks the API token: first as an account-owned token, then,
// when the account endpoint refuses it or does not exist, as a user token.
// Legacy key credentials cannot be verified (ErrTokenVerifyUnsupported).
func (c *Client) VerifyToken(ctx context.Context) (*TokenStatus, error) {
	if !c.auth.isToken() {
		return nil, ErrTokenVerifyUnsupported
	}
	status, accountErr := c.verifyAt(ctx, ScopeAccount, "accounts", c.accountID, "tokens", "verify")
	if accountErr == nil {
		return status, nil
	}
	if !userTokenMayWork(accountErr) {
		return nil, fmt.Errorf("verifying the API token: %w", accountErr)
	}
	status, userErr := c.verifyAt(ctx, ScopeUser, "user", "tokens", "verify")
	if userErr != nil {
		return nil, fmt.Errorf("verifying the API token (as an account token: %v; as a user token): %w", accountErr, userErr)
	}
	return status, nil
}

// userTokenMayWork reports whether the account endpoint's refusal leaves
// room for a user token: it does not exist (404), or it answered with a
// client error such as "Invalid API Token" for a token it does not own.
// Rate limits, server errors and transport failures do not.
func userTokenMayWork(err error) bool {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	s := apiErr.StatusCode
	return s == http.StatusNotFound || s == http.StatusBadRequest || s == http.StatusUnauthorized || s == http.StatusForbidden
}

func (c *Client) verifyAt(ctx context.Context, scope string, segments ...string) (*TokenStatus, error) {
	req := request{method: http.MethodGet, url: c.endpoint(nil, segments...)}
	res, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	var tr tokenResult
	if err := decodeResult(req, res, &tr); err != nil {
		return nil, err
	}
	return &TokenStatus{ID: tr.ID, Status: tr.Status, ExpiresOn: tr.ExpiresOn, Scope: scope}, nil
}
