package request_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"risk-reset-bot/request"
	"risk-reset-bot/request/storetest"
)

// The fixtures of the store tests serve the request's own tests too.
var (
	t0       = storetest.T0
	draft    = storetest.Draft
	snapshot = storetest.Snapshot
)

const (
	ttl       = storetest.TTL
	requester = storetest.Requester
	leadA     = storetest.LeadA
	leadB     = storetest.LeadB
)

func newRequest(t *testing.T, required int) *request.Request {
	t.Helper()
	return request.New(draft("cf-user-1", required), t0, ttl)
}

func TestNew(t *testing.T) {
	d := draft("cf-user-1", 2)
	r := request.New(d, t0, ttl)

	if r.ID == "" {
		t.Fatal("ID is empty")
	}
	if other := request.New(d, t0, ttl); other.ID == r.ID {
		t.Errorf("two requests share ID %q", r.ID)
	}
	if r.State != request.StatePending {
		t.Errorf("State = %q, want %q", r.State, request.StatePending)
	}
	if !r.CreatedAt.Equal(t0) {
		t.Errorf("CreatedAt = %v, want %v", r.CreatedAt, t0)
	}
	if want := t0.Add(ttl); !r.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", r.ExpiresAt, want)
	}
	if r.Requester != d.Requester || r.ChannelID != d.ChannelID || r.Target != d.Target ||
		r.Risk != d.Risk || r.Reason != d.Reason || r.RequiredApprovals != d.RequiredApprovals {
		t.Errorf("New(%+v) = %+v, draft fields not copied", d, r)
	}
	if len(r.Approvals) != 0 || r.DecidedBy != "" || !r.DecidedAt.IsZero() || r.Outcome != nil || r.CardTS != "" {
		t.Errorf("new request already carries a decision: %+v", r)
	}
}

func TestSelfConfirm(t *testing.T) {
	tests := []struct {
		required int
		want     bool
	}{
		{0, true},
		{1, false},
		{2, false},
	}
	for _, tt := range tests {
		if got := newRequest(t, tt.required).SelfConfirm(); got != tt.want {
			t.Errorf("SelfConfirm() with RequiredApprovals %d = %v, want %v", tt.required, got, tt.want)
		}
	}
}

func TestStateTerminal(t *testing.T) {
	tests := []struct {
		state request.State
		want  bool
	}{
		{request.StatePending, false},
		{request.StateExecuting, false},
		{request.StateSucceeded, true},
		{request.StateFailed, true},
		{request.StateCancelled, true},
		{request.StateDenied, true},
		{request.StateExpired, true},
	}
	for _, tt := range tests {
		if got := tt.state.Terminal(); got != tt.want {
			t.Errorf("%q.Terminal() = %v, want %v", tt.state, got, tt.want)
		}
	}
}

type approveStep struct {
	actor       string
	after       time.Duration // since t0
	wantExecute bool
	wantErr     error
}

func TestApprove(t *testing.T) {
	tests := []struct {
		name          string
		required      int
		steps         []approveStep
		wantState     request.State
		wantApprovals []request.Approval
		wantDecidedBy string
		wantDecidedAt time.Time
	}{
		{
			name:          "self-confirm executes at once",
			required:      0,
			steps:         []approveStep{{actor: requester, after: time.Minute, wantExecute: true}},
			wantState:     request.StateExecuting,
			wantApprovals: []request.Approval{{By: requester, At: t0.Add(time.Minute)}},
			wantDecidedBy: requester,
			wantDecidedAt: t0.Add(time.Minute),
		},
		{
			name:          "one approval required",
			required:      1,
			steps:         []approveStep{{actor: leadA, after: time.Minute, wantExecute: true}},
			wantState:     request.StateExecuting,
			wantApprovals: []request.Approval{{By: leadA, At: t0.Add(time.Minute)}},
			wantDecidedBy: leadA,
			wantDecidedAt: t0.Add(time.Minute),
		},
		{
			name:     "two approvals: first waits, second executes",
			required: 2,
			steps: []approveStep{
				{actor: leadA, after: time.Minute},
				{actor: leadB, after: 2 * time.Minute, wantExecute: true},
			},
			wantState: request.StateExecuting,
			wantApprovals: []request.Approval{
				{By: leadA, At: t0.Add(time.Minute)},
				{By: leadB, At: t0.Add(2 * time.Minute)},
			},
			wantDecidedBy: leadB,
			wantDecidedAt: t0.Add(2 * time.Minute),
		},
		{
			name:     "two approvals: same approver twice does not count",
			required: 2,
			steps: []approveStep{
				{actor: leadA, after: time.Minute},
				{actor: leadA, after: 2 * time.Minute, wantErr: request.ErrAlreadyApproved},
			},
			wantState:     request.StatePending,
			wantApprovals: []request.Approval{{By: leadA, At: t0.Add(time.Minute)}},
		},
		{
			name:     "two approvals: repeat click, then a second approver",
			required: 2,
			steps: []approveStep{
				{actor: leadA, after: time.Minute},
				{actor: leadA, after: 2 * time.Minute, wantErr: request.ErrAlreadyApproved},
				{actor: leadB, after: 3 * time.Minute, wantExecute: true},
			},
			wantState: request.StateExecuting,
			wantApprovals: []request.Approval{
				{By: leadA, At: t0.Add(time.Minute)},
				{By: leadB, At: t0.Add(3 * time.Minute)},
			},
			wantDecidedBy: leadB,
			wantDecidedAt: t0.Add(3 * time.Minute),
		},
		{
			name:          "approval just before expiry counts",
			required:      1,
			steps:         []approveStep{{actor: leadA, after: ttl - time.Nanosecond, wantExecute: true}},
			wantState:     request.StateExecuting,
			wantApprovals: []request.Approval{{By: leadA, At: t0.Add(ttl - time.Nanosecond)}},
			wantDecidedBy: leadA,
			wantDecidedAt: t0.Add(ttl - time.Nanosecond),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(t, tt.required)
			for i, s := range tt.steps {
				execute, err := r.Approve(s.actor, t0.Add(s.after))
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: Approve(%q) error = %v, want %v", i, s.actor, err, s.wantErr)
				}
				if execute != s.wantExecute {
					t.Fatalf("step %d: Approve(%q) execute = %v, want %v", i, s.actor, execute, s.wantExecute)
				}
			}
			if r.State != tt.wantState {
				t.Errorf("State = %q, want %q", r.State, tt.wantState)
			}
			if !reflect.DeepEqual(r.Approvals, tt.wantApprovals) {
				t.Errorf("Approvals = %+v, want %+v", r.Approvals, tt.wantApprovals)
			}
			if r.DecidedBy != tt.wantDecidedBy || !r.DecidedAt.Equal(tt.wantDecidedAt) {
				t.Errorf("decided by %q at %v, want %q at %v", r.DecidedBy, r.DecidedAt, tt.wantDecidedBy, tt.wantDecidedAt)
			}
		})
	}
}

func TestReject(t *testing.T) {
	at := t0.Add(5 * time.Minute)
	tests := []struct {
		name      string
		actor     string
		note      string
		wantState request.State
	}{
		{name: "requester cancels", actor: requester, note: "opened by mistake", wantState: request.StateCancelled},
		{name: "requester cancels without note", actor: requester, wantState: request.StateCancelled},
		{name: "someone else denies", actor: leadA, note: "risk is real, keep it", wantState: request.StateDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(t, 1)
			if err := r.Reject(tt.actor, tt.note, at); err != nil {
				t.Fatalf("Reject(%q) = %v", tt.actor, err)
			}
			if r.State != tt.wantState {
				t.Errorf("State = %q, want %q", r.State, tt.wantState)
			}
			if r.DecidedBy != tt.actor || !r.DecidedAt.Equal(at) {
				t.Errorf("decided by %q at %v, want %q at %v", r.DecidedBy, r.DecidedAt, tt.actor, at)
			}
			if r.Note != tt.note {
				t.Errorf("Note = %q, want %q", r.Note, tt.note)
			}
		})
	}
}

// decided builds a request that has left pending the way a user would see
// it happen, and says who moved it and when.
type decided struct {
	name   string
	build  func(t *testing.T) *request.Request
	state  request.State
	by     string
	at     time.Time
	noteBy bool
}

func decidedRequests() []decided {
	approved := func(t *testing.T) *request.Request {
		t.Helper()
		r := newRequest(t, 1)
		if _, err := r.Approve(leadA, t0.Add(time.Minute)); err != nil {
			t.Fatalf("Approve: %v", err)
		}
		return r
	}
	finished := func(ok bool) func(t *testing.T) *request.Request {
		return func(t *testing.T) *request.Request {
			t.Helper()
			r := approved(t)
			if err := r.Finish(request.Outcome{Verified: ok, At: t0.Add(2 * time.Minute)}, ok); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			return r
		}
	}
	rejected := func(actor string) func(t *testing.T) *request.Request {
		return func(t *testing.T) *request.Request {
			t.Helper()
			r := newRequest(t, 1)
			if err := r.Reject(actor, "", t0.Add(3*time.Minute)); err != nil {
				t.Fatalf("Reject: %v", err)
			}
			return r
		}
	}
	expireAt := t0.Add(ttl + time.Minute)
	return []decided{
		{name: "executing", build: approved, state: request.StateExecuting, by: leadA, at: t0.Add(time.Minute)},
		{name: "succeeded", build: finished(true), state: request.StateSucceeded, by: leadA, at: t0.Add(time.Minute)},
		{name: "failed", build: finished(false), state: request.StateFailed, by: leadA, at: t0.Add(time.Minute)},
		{name: "cancelled", build: rejected(requester), state: request.StateCancelled, by: requester, at: t0.Add(3 * time.Minute)},
		{name: "denied", build: rejected(leadB), state: request.StateDenied, by: leadB, at: t0.Add(3 * time.Minute)},
		{name: "expired", build: func(t *testing.T) *request.Request {
			t.Helper()
			r := newRequest(t, 1)
			if err := r.Expire(expireAt); err != nil {
				t.Fatalf("Expire: %v", err)
			}
			return r
		}, state: request.StateExpired, by: "", at: expireAt},
	}
}

func TestActingOnDecidedRequest(t *testing.T) {
	actions := []struct {
		name string
		act  func(r *request.Request, now time.Time) error
	}{
		{"approve", func(r *request.Request, now time.Time) error {
			execute, err := r.Approve(leadB, now)
			if execute {
				return errors.New("approve on a decided request asked to execute")
			}
			return err
		}},
		{"approve by requester", func(r *request.Request, now time.Time) error {
			_, err := r.Approve(requester, now)
			return err
		}},
		{"reject", func(r *request.Request, now time.Time) error { return r.Reject(leadB, "late", now) }},
		{"cancel", func(r *request.Request, now time.Time) error { return r.Reject(requester, "", now) }},
	}
	for _, d := range decidedRequests() {
		for _, a := range actions {
			t.Run(d.name+"/"+a.name, func(t *testing.T) {
				r := d.build(t)
				before := snapshot(r)
				// Before expiry, so the answer comes from the decision, not the clock.
				err := a.act(r, t0.Add(10*time.Minute))

				var de *request.DecidedError
				if !errors.As(err, &de) {
					t.Fatalf("error = %v (%T), want *DecidedError", err, err)
				}
				if de.ID != r.ID || de.State != d.state || de.By != d.by || !de.At.Equal(d.at) {
					t.Errorf("DecidedError = %+v, want ID %s state %q by %q at %v", de, r.ID, d.state, d.by, d.at)
				}
				if !reflect.DeepEqual(r, before) {
					t.Errorf("request changed by a refused action:\n got %+v\nwant %+v", r, before)
				}
			})
		}
	}
}

func TestDecidedErrorMessage(t *testing.T) {
	tests := []struct {
		name    string
		err     *request.DecidedError
		want    []string
		notWant string
	}{
		{
			name: "names who and when",
			err:  &request.DecidedError{ID: "req-1", State: request.StateExecuting, By: leadA, At: t0.In(time.FixedZone("CET", 3600))},
			want: []string{"req-1", "executing", leadA, "2025-03-04T10:00:00Z"},
		},
		{
			name:    "expiry has nobody to name",
			err:     &request.DecidedError{ID: "req-2", State: request.StateExpired, At: t0},
			want:    []string{"req-2", "expired"},
			notWant: "by",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Error() = %q, want it to contain %q", msg, w)
				}
			}
			if tt.notWant != "" && strings.Contains(msg, " "+tt.notWant+" ") {
				t.Errorf("Error() = %q, should not contain %q", msg, tt.notWant)
			}
		})
	}
}

func TestClickAtOrAfterExpiry(t *testing.T) {
	expiresAt := t0.Add(ttl)
	actions := []struct {
		name string
		act  func(r *request.Request, now time.Time) error
	}{
		{"approve", func(r *request.Request, now time.Time) error {
			execute, err := r.Approve(leadA, now)
			if execute {
				return errors.New("approve after expiry asked to execute")
			}
			return err
		}},
		{"self-confirm", func(r *request.Request, now time.Time) error {
			_, err := r.Approve(requester, now)
			return err
		}},
		{"deny", func(r *request.Request, now time.Time) error { return r.Reject(leadA, "no", now) }},
		{"cancel", func(r *request.Request, now time.Time) error { return r.Reject(requester, "", now) }},
	}
	for _, at := range []struct {
		name string
		now  time.Time
	}{
		{"at expiry", expiresAt},
		{"after expiry", expiresAt.Add(time.Hour)},
	} {
		for _, required := range []int{0, 1} {
			for _, a := range actions {
				t.Run(at.name+"/"+a.name, func(t *testing.T) {
					r := newRequest(t, required)
					before := snapshot(r)

					err := a.act(r, at.now)

					var de *request.DecidedError
					if !errors.As(err, &de) {
						t.Fatalf("error = %v (%T), want *DecidedError", err, err)
					}
					want := request.DecidedError{ID: r.ID, State: request.StateExpired, At: expiresAt}
					if *de != want {
						t.Errorf("DecidedError = %+v, want %+v", *de, want)
					}
					if !reflect.DeepEqual(r, before) {
						t.Errorf("click after expiry changed the request:\n got %+v\nwant %+v", r, before)
					}
				})
			}
		}
	}
}

func TestExpire(t *testing.T) {
	expiresAt := t0.Add(ttl)
	tests := []struct {
		name      string
		prepare   func(r *request.Request) error
		now       time.Time
		wantErr   error
		wantState request.State
	}{
		{name: "before due", now: expiresAt.Add(-time.Nanosecond), wantErr: request.ErrNotExpired, wantState: request.StatePending},
		{name: "at due", now: expiresAt, wantState: request.StateExpired},
		{name: "after due", now: expiresAt.Add(time.Hour), wantState: request.StateExpired},
		{
			name:      "already executing",
			prepare:   func(r *request.Request) error { _, err := r.Approve(leadA, t0); return err },
			now:       expiresAt.Add(time.Hour),
			wantErr:   request.ErrNotExpired,
			wantState: request.StateExecuting,
		},
		{
			name:      "already cancelled",
			prepare:   func(r *request.Request) error { return r.Reject(requester, "", t0) },
			now:       expiresAt.Add(time.Hour),
			wantErr:   request.ErrNotExpired,
			wantState: request.StateCancelled,
		},
		{
			name:      "already expired",
			prepare:   func(r *request.Request) error { return r.Expire(expiresAt) },
			now:       expiresAt.Add(time.Hour),
			wantErr:   request.ErrNotExpired,
			wantState: request.StateExpired,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(t, 1)
			if tt.prepare != nil {
				if err := tt.prepare(r); err != nil {
					t.Fatalf("prepare: %v", err)
				}
			}
			before := snapshot(r)

			err := r.Expire(tt.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Expire = %v, want %v", err, tt.wantErr)
			}
			if r.State != tt.wantState {
				t.Errorf("State = %q, want %q", r.State, tt.wantState)
			}
			if tt.wantErr != nil {
				if !reflect.DeepEqual(r, before) {
					t.Errorf("refused Expire changed the request:\n got %+v\nwant %+v", r, before)
				}
				return
			}
			if r.DecidedBy != "" || !r.DecidedAt.Equal(tt.now) {
				t.Errorf("decided by %q at %v, want nobody at %v", r.DecidedBy, r.DecidedAt, tt.now)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	outcome := request.Outcome{Verified: true, Detail: "score reset", HTTP: 200, CFRay: "8a1b2c3d4e5f-AMS", At: t0.Add(2 * time.Minute)}
	approve := func(r *request.Request) error { _, err := r.Approve(leadA, t0.Add(time.Minute)); return err }
	tests := []struct {
		name        string
		prepare     []func(r *request.Request) error
		succeeded   bool
		wantErr     error
		wantState   request.State
		wantOutcome *request.Outcome
	}{
		{name: "executing succeeds", prepare: []func(*request.Request) error{approve}, succeeded: true, wantState: request.StateSucceeded, wantOutcome: &outcome},
		{name: "executing fails", prepare: []func(*request.Request) error{approve}, succeeded: false, wantState: request.StateFailed, wantOutcome: &outcome},
		{name: "pending", succeeded: true, wantErr: request.ErrNotExecuting, wantState: request.StatePending},
		{
			name:      "cancelled",
			prepare:   []func(*request.Request) error{func(r *request.Request) error { return r.Reject(requester, "", t0) }},
			succeeded: true, wantErr: request.ErrNotExecuting, wantState: request.StateCancelled,
		},
		{
			name:      "expired",
			prepare:   []func(*request.Request) error{func(r *request.Request) error { return r.Expire(t0.Add(ttl)) }},
			succeeded: true, wantErr: request.ErrNotExecuting, wantState: request.StateExpired,
		},
		{
			name: "already failed",
			prepare: []func(*request.Request) error{approve, func(r *request.Request) error {
				return r.Finish(request.Outcome{Detail: "first run"}, false)
			}},
			succeeded: true, wantErr: request.ErrNotExecuting, wantState: request.StateFailed,
			wantOutcome: &request.Outcome{Detail: "first run"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(t, 1)
			for _, p := range tt.prepare {
				if err := p(r); err != nil {
					t.Fatalf("prepare: %v", err)
				}
			}
			err := r.Finish(outcome, tt.succeeded)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Finish = %v, want %v", err, tt.wantErr)
			}
			if r.State != tt.wantState {
				t.Errorf("State = %q, want %q", r.State, tt.wantState)
			}
			if !reflect.DeepEqual(r.Outcome, tt.wantOutcome) {
				t.Errorf("Outcome = %+v, want %+v", r.Outcome, tt.wantOutcome)
			}
		})
	}
}

func TestCloneIsDeep(t *testing.T) {
	r := newRequest(t, 2)
	if _, err := r.Approve(leadA, t0.Add(time.Minute)); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if _, err := r.Approve(leadB, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if err := r.Finish(request.Outcome{Detail: "reset", At: t0.Add(3 * time.Minute)}, true); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	want := snapshot(r)
	if got := r.Clone(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Clone() = %+v, want %+v", got, want)
	}

	c := r.Clone()
	c.Approvals[0].By = "UINTRUDER"
	c.Approvals = append(c.Approvals, request.Approval{By: "UEXTRA"})
	c.Outcome.Detail = "tampered"
	c.Outcome.Verified = true
	c.State = request.StateFailed
	c.Target.Email = "other@example.com"

	if !reflect.DeepEqual(r, want) {
		t.Errorf("mutating a clone changed the original:\n got %+v\nwant %+v", r, want)
	}
	if r.Outcome == c.Outcome {
		t.Error("clone shares its Outcome with the original")
	}
}

func TestCloneWithoutOutcome(t *testing.T) {
	r := newRequest(t, 1)
	c := r.Clone()
	if c.Outcome != nil {
		t.Errorf("Clone of a request without outcome has Outcome %+v", c.Outcome)
	}
	if _, err := c.Approve(leadA, t0); err != nil {
		t.Fatalf("Approve on clone: %v", err)
	}
	if r.State != request.StatePending || len(r.Approvals) != 0 {
		t.Errorf("approving a clone changed the original: state %q, approvals %+v", r.State, r.Approvals)
	}
}

func TestRevokeApprovals(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	r := request.New(request.Draft{Requester: "U1", Target: request.Target{UserID: "x"}, RequiredApprovals: 2}, t0, time.Hour)
	if _, err := r.Approve("U2", t0); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeApprovals([]string{"U2"}, t0); err != nil {
		t.Fatal(err)
	}
	if execute, err := r.Approve("U3", t0); err != nil || execute {
		t.Fatalf("Approve after revoking the only other approval = %v, %v; want not executing", execute, err)
	}
	if len(r.Approvals) != 1 || r.Approvals[0].By != "U3" {
		t.Errorf("approvals = %+v, want only U3", r.Approvals)
	}
	r.State = request.StateCancelled
	var decided *request.DecidedError
	if err := r.RevokeApprovals([]string{"U3"}, t0); !errors.As(err, &decided) {
		t.Errorf("RevokeApprovals on a decided request = %v, want *DecidedError", err)
	}
}

// TestUnsettledUntilShown: a request is someone's to carry on from its
// approval until its finished outcome has been shown.
func TestUnsettledUntilShown(t *testing.T) {
	r := request.New(storetest.Draft("cf-user-1", 1), storetest.T0, storetest.TTL)
	if r.Unsettled() {
		t.Error("a pending request is unsettled")
	}
	approvedAt := storetest.T0.Add(time.Minute)
	if _, err := r.Approve(storetest.LeadA, approvedAt); err != nil {
		t.Fatal(err)
	}
	if !r.Unsettled() || !r.UnsettledSince().Equal(approvedAt) {
		t.Errorf("executing: Unsettled %v since %v, want true since the approval %v", r.Unsettled(), r.UnsettledSince(), approvedAt)
	}
	finishedAt := approvedAt.Add(time.Minute)
	if err := r.Finish(request.Outcome{At: finishedAt}, true); err != nil {
		t.Fatal(err)
	}
	if !r.Unsettled() || !r.UnsettledSince().Equal(finishedAt) {
		t.Errorf("finished, not shown: Unsettled %v since %v, want true since the outcome %v", r.Unsettled(), r.UnsettledSince(), finishedAt)
	}
	r.Announced()
	if r.Unsettled() {
		t.Error("finished and shown: still unsettled")
	}
}
