package request

import (
	"context"
	"fmt"
	"time"
)

// Store keeps requests so that a transition happens once, even when two
// clicks arrive together. Implementations must be safe for concurrent use.
type Store interface {
	// Create stores a new pending request. When the target already has a
	// pending request it returns a *DuplicateError naming that request.
	Create(ctx context.Context, r *Request) error
	// Get returns a copy of the request, or ErrNotFound.
	Get(ctx context.Context, id string) (*Request, error)
	// Update applies fn to the current request atomically: either fn's
	// changes are stored as a whole, or fn's error is returned and nothing
	// changes. fn may run more than once (optimistic stores retry on
	// conflict), so it must not have side effects. Update returns the stored
	// result.
	Update(ctx context.Context, id string, fn func(*Request) error) (*Request, error)
	// CountPending returns how many requests are pending.
	CountPending(ctx context.Context) (int, error)
	// DuePending returns pending requests whose expiry is not after now.
	DuePending(ctx context.Context, now time.Time) ([]*Request, error)
	// Unsettled returns the requests that are Unsettled since before
	// olderThan: a replica that died mid-reset, or after the reset but
	// before showing its outcome, leaves them so.
	Unsettled(ctx context.Context, olderThan time.Time) ([]*Request, error)
	// FirstDelivery records a key and reports whether this is the first
	// time it was seen within ttl: an envelope id, so redelivered
	// envelopes are handled once, or another once-only marker (such as
	// "refusal:<request>:<user>:<action>", which cannot be an envelope id).
	FirstDelivery(ctx context.Context, envelopeID string, ttl time.Duration) (bool, error)
	// Ping reports whether the store can be reached.
	Ping(ctx context.Context) error
}

// DuplicateError is returned by Store.Create when the target already has a
// pending request.
type DuplicateError struct {
	Existing *Request
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("user %s already has pending request %s", e.Existing.Target.UserID, e.Existing.ID)
}
