// Package request holds the life of a risk-reset request: its states, the
// transitions between them and the store that makes each transition happen
// once. It knows nothing of Slack or HTTP, so every rule here is tested
// without a websocket; the bot package adapts Slack to it.
package request

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// State is where a request is in its life.
type State string

// The states of a request. Pending is the only state a person can act on;
// Executing is entered by the approval that completes the quorum, so a reset
// runs at most once.
const (
	StatePending   State = "pending"
	StateExecuting State = "executing"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
	StateDenied    State = "denied"
	StateExpired   State = "expired"
)

// Terminal reports whether nothing more can happen to a request in s.
func (s State) Terminal() bool {
	switch s {
	case StateSucceeded, StateFailed, StateCancelled, StateDenied, StateExpired:
		return true
	}
	return false
}

// Target is the Cloudflare Zero Trust user whose risk score would be reset.
type Target struct {
	UserID string // Cloudflare user UUID
	Email  string
	Name   string
}

// Risk is what was known of the target's risk when the request was opened.
type Risk struct {
	Level       string // low, medium, high, or empty when Cloudflare reports none
	Events      int
	Unavailable string // why details could not be read; empty when they were
}

// Approval is one approver's click.
type Approval struct {
	By string
	At time.Time
}

// Outcome is the result of running the reset.
type Outcome struct {
	Verified bool   // a read-back confirmed the reset
	Detail   string // user-facing explanation on failure, or a note on success
	Code     int    // Cloudflare error code, when there was one
	HTTP     int    // Cloudflare HTTP status, when there was one
	CFRay    string
	At       time.Time
}

// Request is one ask to reset one user's risk score.
type Request struct {
	ID                string
	Requester         string // Slack user ID
	ChannelID         string
	CardTS            string // ts of the card message; empty until posted
	AuditTS           string // ts of the audit record written before the reset; empty until then
	Target            Target
	Risk              Risk
	Reason            string
	CreatedAt         time.Time
	ExpiresAt         time.Time
	RequiredApprovals int // 0 means the requester confirms their own request

	State     State
	Approvals []Approval
	DecidedBy string // who moved the request out of pending (empty for expiry)
	DecidedAt time.Time
	Note      string // reason given with a denial
	Outcome   *Outcome
	// Unannounced is set when a reset's outcome is recorded and cleared
	// once the card, the thread and the audit channel show it, so that a
	// replica dying in between leaves the request for another to show.
	Unannounced bool
}

// Draft is what a requester supplies; New turns it into a pending request.
type Draft struct {
	ID                string // generated when empty
	Requester         string
	ChannelID         string
	Target            Target
	Risk              Risk
	Reason            string
	RequiredApprovals int
}

// New opens a pending request from d at now, expiring after ttl.
func New(d Draft, now time.Time, ttl time.Duration) *Request {
	id := d.ID
	if id == "" {
		id = uuid.NewString()
	}
	return &Request{
		ID:                id,
		Requester:         d.Requester,
		ChannelID:         d.ChannelID,
		Target:            d.Target,
		Risk:              d.Risk,
		Reason:            d.Reason,
		CreatedAt:         now,
		ExpiresAt:         now.Add(ttl),
		RequiredApprovals: d.RequiredApprovals,
		State:             StatePending,
	}
}

// Clone returns a deep copy, so a store never shares memory with its callers.
func (r *Request) Clone() *Request {
	c := *r
	c.Approvals = slices.Clone(r.Approvals)
	if r.Outcome != nil {
		o := *r.Outcome
		c.Outcome = &o
	}
	return &c
}

// SelfConfirm reports whether the requester confirms their own request
// because no approvers are configured.
func (r *Request) SelfConfirm() bool { return r.RequiredApprovals == 0 }

// ErrNotFound is returned for a request the store does not know.
var ErrNotFound = errors.New("request not found")

// ErrAlreadyApproved is returned when an approver clicks approve twice.
var ErrAlreadyApproved = errors.New("you have already approved this request")

// DecidedError is returned when someone acts on a request that has already
// left pending; it says who moved it and when, which is what the loser of a
// race is told.
type DecidedError struct {
	ID    string
	State State
	By    string
	At    time.Time
}

func (e *DecidedError) Error() string {
	if e.By == "" {
		return fmt.Sprintf("request %s is already %s", e.ID, e.State)
	}
	return fmt.Sprintf("request %s is already %s (by %s at %s)", e.ID, e.State, e.By, e.At.UTC().Format(time.RFC3339))
}

func (r *Request) decidedError() error {
	return &DecidedError{ID: r.ID, State: r.State, By: r.DecidedBy, At: r.DecidedAt}
}

// requirePending returns an error when r cannot be acted on at now. A
// pending request past its expiry answers as expired even before the sweeper
// has moved it, so a click racing the expiry loses the same way whichever
// runs first; the caller then expires it through the store.
func (r *Request) requirePending(now time.Time) error {
	switch {
	case r.State != StatePending:
		return r.decidedError()
	case !now.Before(r.ExpiresAt):
		return &DecidedError{ID: r.ID, State: StateExpired, At: r.ExpiresAt}
	}
	return nil
}

// Approve records actor's approval at now. It reports whether the request
// moved to Executing, which happens when the last required approval arrives
// (or at once when the requester confirms their own request). Whether actor
// may approve is a policy question answered before this is called.
func (r *Request) Approve(actor string, now time.Time) (execute bool, err error) {
	if err := r.requirePending(now); err != nil {
		return false, err
	}
	if slices.ContainsFunc(r.Approvals, func(a Approval) bool { return a.By == actor }) {
		return false, ErrAlreadyApproved
	}
	r.Approvals = append(r.Approvals, Approval{By: actor, At: now})
	if len(r.Approvals) < max(r.RequiredApprovals, 1) {
		return false, nil
	}
	r.State, r.DecidedBy, r.DecidedAt = StateExecuting, actor, now
	return true, nil
}

// RevokeApprovals drops the approvals of people who may no longer
// approve, so they do not count toward the quorum.
func (r *Request) RevokeApprovals(by []string, now time.Time) error {
	if err := r.requirePending(now); err != nil {
		return err
	}
	r.Approvals = slices.DeleteFunc(r.Approvals, func(a Approval) bool { return slices.Contains(by, a.By) })
	return nil
}

// Reject ends a pending request: a requester's click cancels it, anyone
// else's denies it. note is an optional reason shown in the thread.
func (r *Request) Reject(actor, note string, now time.Time) error {
	if err := r.requirePending(now); err != nil {
		return err
	}
	r.State = StateDenied
	if actor == r.Requester {
		r.State = StateCancelled
	}
	r.DecidedBy, r.DecidedAt, r.Note = actor, now, note
	return nil
}

// ErrNotExpired is returned by Expire for a request that is still within its
// time or no longer pending.
var ErrNotExpired = errors.New("request is not due to expire")

// Expire moves a pending request past its expiry to Expired.
func (r *Request) Expire(now time.Time) error {
	if r.State != StatePending || now.Before(r.ExpiresAt) {
		return ErrNotExpired
	}
	r.State, r.DecidedBy, r.DecidedAt = StateExpired, "", now
	return nil
}

// ErrNotExecuting is returned when an outcome is recorded for a request that
// is not running a reset.
var ErrNotExecuting = errors.New("request is not executing")

// Finish records the outcome of the reset and moves the request to
// Succeeded or Failed.
func (r *Request) Finish(o Outcome, succeeded bool) error {
	if r.State != StateExecuting {
		return ErrNotExecuting
	}
	r.Outcome = &o
	r.State = StateFailed
	if succeeded {
		r.State = StateSucceeded
	}
	r.Unannounced = true
	return nil
}

// Announced records that r's outcome has been shown.
func (r *Request) Announced() { r.Unannounced = false }

// Unsettled reports whether someone must still carry r to a visible end:
// its reset runs, or it ran and its outcome has not been shown.
func (r *Request) Unsettled() bool { return r.State == StateExecuting || r.Unannounced }

// UnsettledSince is when r became unsettled as it is now: approved and
// executing since DecidedAt, or finished at its outcome's time.
func (r *Request) UnsettledSince() time.Time {
	if r.State == StateExecuting || r.Outcome == nil {
		return r.DecidedAt
	}
	return r.Outcome.At
}

// Abort ends a pending request that could not be carried on (its card could
// not be posted, say) as failed, with why as the detail.
func (r *Request) Abort(why string, now time.Time) error {
	if r.State != StatePending {
		return r.decidedError()
	}
	r.State, r.DecidedAt = StateFailed, now
	r.Outcome = &Outcome{Detail: why, At: now}
	return nil
}
