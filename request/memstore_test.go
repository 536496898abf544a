package request_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"risk-reset-bot/request"
)

var _ request.Store = (*request.MemStore)(nil)

// fakeClock is the time the store sees; tests move it instead of sleeping.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

const retention = time.Hour

func newStore(t *testing.T) (*request.MemStore, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: t0}
	return request.NewMemStore(clock.now, retention), clock
}

func mustCreate(t *testing.T, s *request.MemStore, r *request.Request) {
	t.Helper()
	if err := s.Create(context.Background(), r); err != nil {
		t.Fatalf("Create(%s): %v", r.ID, err)
	}
}

func mustGet(t *testing.T, s *request.MemStore, id string) *request.Request {
	t.Helper()
	r, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

func TestMemStoreCreateGetReturnsCopies(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r := request.New(draft("cf-user-1", 2), t0, ttl)
	if _, err := r.Approve(leadA, t0.Add(time.Minute)); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	want := snapshot(r)

	mustCreate(t, s, r)
	// The caller keeps its pointer; changing it must not reach the store.
	r.State = request.StateDenied
	r.Approvals[0].By = "UINTRUDER"

	got := mustGet(t, s, want.ID)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Get = %+v, want %+v", got, want)
	}

	got.State = request.StateExecuting
	got.Approvals[0].By = "UINTRUDER"
	got.Approvals = append(got.Approvals, request.Approval{By: leadB})
	got.Outcome = &request.Outcome{Detail: "tampered"}

	if again := mustGet(t, s, want.ID); !reflect.DeepEqual(again, want) {
		t.Errorf("mutating a returned request changed the store:\n got %+v\nwant %+v", again, want)
	}

	updated, err := s.Update(ctx, want.ID, func(r *request.Request) error {
		r.CardTS = "1712345678.000100"
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	updated.CardTS = "tampered"
	if got := mustGet(t, s, want.ID); got.CardTS != "1712345678.000100" {
		t.Errorf("CardTS = %q after mutating Update's result, want the stored value", got.CardTS)
	}
}

func TestMemStoreUnknownID(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, err := s.Get(ctx, "no-such-id"); !errors.Is(err, request.ErrNotFound) {
		t.Errorf("Get unknown = %v, want ErrNotFound", err)
	}
	called := false
	_, err := s.Update(ctx, "no-such-id", func(*request.Request) error { called = true; return nil })
	if !errors.Is(err, request.ErrNotFound) {
		t.Errorf("Update unknown = %v, want ErrNotFound", err)
	}
	if called {
		t.Error("Update called fn for an unknown request")
	}
}

func TestMemStoreDuplicatePending(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	first := request.New(draft("cf-user-1", 1), t0, ttl)
	mustCreate(t, s, first)

	second := request.New(draft("cf-user-1", 1), t0.Add(time.Minute), ttl)
	err := s.Create(ctx, second)
	var dup *request.DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("Create of a second pending request = %v, want *DuplicateError", err)
	}
	if dup.Existing == nil || dup.Existing.ID != first.ID {
		t.Fatalf("DuplicateError names %+v, want request %s", dup.Existing, first.ID)
	}
	if msg := dup.Error(); !strings.Contains(msg, first.ID) || !strings.Contains(msg, "cf-user-1") {
		t.Errorf("Error() = %q, want it to name the user and the pending request", msg)
	}
	if _, err := s.Get(ctx, second.ID); !errors.Is(err, request.ErrNotFound) {
		t.Errorf("refused duplicate was stored: Get = %v", err)
	}

	dup.Existing.State = request.StateCancelled
	if got := mustGet(t, s, first.ID); got.State != request.StatePending {
		t.Errorf("mutating DuplicateError.Existing changed the store: state %q", got.State)
	}

	other := request.New(draft("cf-user-2", 1), t0, ttl)
	if err := s.Create(ctx, other); err != nil {
		t.Errorf("Create for another target = %v, want nil", err)
	}
}

func TestMemStoreCreateAfterFirstLeavesPending(t *testing.T) {
	tests := []struct {
		name  string
		leave func(r *request.Request) error
	}{
		{"approved", func(r *request.Request) error { _, err := r.Approve(leadA, t0.Add(time.Minute)); return err }},
		{"cancelled", func(r *request.Request) error { return r.Reject(requester, "", t0.Add(time.Minute)) }},
		{"denied", func(r *request.Request) error { return r.Reject(leadA, "no", t0.Add(time.Minute)) }},
		{"expired", func(r *request.Request) error { return r.Expire(t0.Add(ttl)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := newStore(t)
			first := request.New(draft("cf-user-1", 1), t0, ttl)
			mustCreate(t, s, first)
			if _, err := s.Update(ctx, first.ID, tt.leave); err != nil {
				t.Fatalf("Update: %v", err)
			}

			second := request.New(draft("cf-user-1", 1), t0.Add(ttl), ttl)
			if err := s.Create(ctx, second); err != nil {
				t.Fatalf("Create after the first left pending = %v, want nil", err)
			}
			// The new one is now the pending request for the target.
			var dup *request.DuplicateError
			err := s.Create(ctx, request.New(draft("cf-user-1", 1), t0.Add(ttl), ttl))
			if !errors.As(err, &dup) || dup.Existing.ID != second.ID {
				t.Errorf("third Create = %v, want *DuplicateError naming %s", err, second.ID)
			}
		})
	}
}

// TestMemStoreUpdateIsAtomic races many clicks on one card; whatever the
// interleaving, exactly one of them may start the reset.
func TestMemStoreUpdateIsAtomic(t *testing.T) {
	const clicks = 50
	tests := []struct {
		name     string
		required int
		actor    func(i int) string
		// Of the clicks that did not execute: how many were accepted without
		// error (an approval short of quorum); the rest must lose the race.
		wantAccepted int
	}{
		{name: "self-confirm, same person clicking", required: 0, actor: func(int) string { return requester }},
		{name: "two approvals, distinct approvers", required: 2, actor: func(i int) string { return fmt.Sprintf("ULEAD%02d", i) }, wantAccepted: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := newStore(t)
			r := request.New(draft("cf-user-1", tt.required), t0, ttl)
			mustCreate(t, s, r)
			now := t0.Add(time.Minute)

			type result struct {
				execute bool
				err     error
			}
			results := make(chan result, clicks)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range clicks {
				wg.Go(func() {
					<-start
					var execute bool
					_, err := s.Update(ctx, r.ID, func(cur *request.Request) error {
						var err error
						execute, err = cur.Approve(tt.actor(i), now)
						return err
					})
					results <- result{execute, err}
				})
			}
			close(start)
			wg.Wait()
			close(results)

			var executed, accepted, lost int
			for res := range results {
				var de *request.DecidedError
				switch {
				case res.err == nil && res.execute:
					executed++
				case res.err == nil:
					accepted++
				case errors.As(res.err, &de) && de.State == request.StateExecuting:
					lost++
				default:
					t.Errorf("unexpected result: execute=%v err=%v", res.execute, res.err)
				}
			}
			if executed != 1 || accepted != tt.wantAccepted || lost != clicks-1-tt.wantAccepted {
				t.Errorf("executed %d, accepted %d, lost %d; want 1, %d, %d",
					executed, accepted, lost, tt.wantAccepted, clicks-1-tt.wantAccepted)
			}
			got := mustGet(t, s, r.ID)
			if got.State != request.StateExecuting || len(got.Approvals) != max(tt.required, 1) {
				t.Errorf("stored state %q with %d approvals, want executing with %d", got.State, len(got.Approvals), max(tt.required, 1))
			}
		})
	}
}

func TestMemStoreUpdateErrorChangesNothing(t *testing.T) {
	ctx := context.Background()
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		fn   func(r *request.Request) error
		want error
	}{
		{
			name: "fn mutates then fails",
			fn: func(r *request.Request) error {
				r.State = request.StateCancelled
				r.Approvals[0].By = "UINTRUDER"
				r.Approvals = append(r.Approvals, request.Approval{By: leadB})
				r.Note = "half-done"
				return errBoom
			},
			want: errBoom,
		},
		{
			name: "transition succeeds then fn fails",
			fn: func(r *request.Request) error {
				if _, err := r.Approve(leadB, t0.Add(2*time.Minute)); err != nil {
					return err
				}
				return errBoom
			},
			want: errBoom,
		},
		{
			name: "transition refused",
			fn:   func(r *request.Request) error { _, err := r.Approve(leadA, t0.Add(2*time.Minute)); return err },
			want: request.ErrAlreadyApproved,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			r := request.New(draft("cf-user-1", 2), t0, ttl)
			if _, err := r.Approve(leadA, t0.Add(time.Minute)); err != nil {
				t.Fatalf("Approve: %v", err)
			}
			mustCreate(t, s, r)
			want := snapshot(r)

			returned, err := s.Update(ctx, r.ID, tt.fn)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Update = %v, want %v", err, tt.want)
			}
			if got := mustGet(t, s, r.ID); !reflect.DeepEqual(got, want) {
				t.Errorf("failed Update changed the store:\n got %+v\nwant %+v", got, want)
			}
			if returned != nil && !reflect.DeepEqual(returned, want) {
				t.Errorf("failed Update returned %+v, want the stored request %+v", returned, want)
			}
			// Still the pending request for its target.
			var dup *request.DuplicateError
			if err := s.Create(ctx, request.New(draft("cf-user-1", 2), t0, ttl)); !errors.As(err, &dup) {
				t.Errorf("Create after failed Update = %v, want *DuplicateError", err)
			}
		})
	}
}

func TestMemStoreDuePending(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	now := t0.Add(ttl)

	add := func(userID string, created time.Time) *request.Request {
		r := request.New(draft(userID, 1), created, ttl)
		mustCreate(t, s, r)
		return r
	}
	dueNow := add("cf-due-now", t0)                         // expires exactly at now
	overdue := add("cf-overdue", t0.Add(-time.Hour))        // expired long ago
	add("cf-not-yet", t0.Add(time.Nanosecond))              // expires just after now
	decidedOverdue := add("cf-decided", t0.Add(-time.Hour)) // due, but already approved
	if _, err := s.Update(ctx, decidedOverdue.ID, func(r *request.Request) error {
		_, err := r.Approve(leadA, t0.Add(-50*time.Minute))
		return err
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}

	due, err := s.DuePending(ctx, now)
	if err != nil {
		t.Fatalf("DuePending: %v", err)
	}
	var ids []string
	for _, r := range due {
		ids = append(ids, r.ID)
		if r.State != request.StatePending {
			t.Errorf("DuePending returned %s in state %q", r.ID, r.State)
		}
	}
	slices.Sort(ids)
	want := []string{dueNow.ID, overdue.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("DuePending ids = %v, want %v", ids, want)
	}

	due[0].State = request.StateExpired
	if got := mustGet(t, s, due[0].ID); got.State != request.StatePending {
		t.Errorf("mutating DuePending's result changed the store: state %q", got.State)
	}

	if none, err := s.DuePending(ctx, t0.Add(-2*time.Hour)); err != nil || len(none) != 0 {
		t.Errorf("DuePending before anything is due = %d requests, %v; want none", len(none), err)
	}
}

func TestMemStoreFirstDelivery(t *testing.T) {
	const envTTL = 10 * time.Minute
	steps := []struct {
		name    string
		advance time.Duration
		id      string
		want    bool
	}{
		{name: "first sight", id: "env-1", want: true},
		{name: "redelivered at once", id: "env-1", want: false},
		{name: "another envelope", id: "env-2", want: true},
		{name: "redelivered just inside ttl", advance: envTTL - time.Nanosecond, id: "env-1", want: false},
		{name: "seen again once ttl has passed", advance: time.Nanosecond, id: "env-1", want: true},
		{name: "that sighting starts a new window", id: "env-1", want: false},
		{name: "second envelope's window also passed", id: "env-2", want: true},
	}
	s, clock := newStore(t)
	for _, st := range steps {
		clock.advance(st.advance)
		got, err := s.FirstDelivery(context.Background(), st.id, envTTL)
		if err != nil {
			t.Fatalf("%s: FirstDelivery: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: FirstDelivery(%q) at +%v = %v, want %v", st.name, st.id, clock.t.Sub(t0), got, st.want)
		}
	}
}

func TestMemStoreForgetsEndedRequests(t *testing.T) {
	approve := func(r *request.Request) error { _, err := r.Approve(leadA, t0.Add(time.Minute)); return err }
	finish := func(ok bool) func(r *request.Request) error {
		return func(r *request.Request) error {
			if err := approve(r); err != nil {
				return err
			}
			return r.Finish(request.Outcome{At: t0.Add(20 * time.Minute)}, ok)
		}
	}
	tests := []struct {
		name  string
		end   func(r *request.Request) error // nil: left pending
		ended time.Time                      // when retention starts counting
		keep  bool                           // never forgotten
	}{
		{name: "cancelled", end: func(r *request.Request) error { return r.Reject(requester, "", t0.Add(time.Minute)) }, ended: t0.Add(time.Minute)},
		{name: "denied", end: func(r *request.Request) error { return r.Reject(leadA, "", t0.Add(time.Minute)) }, ended: t0.Add(time.Minute)},
		{name: "expired", end: func(r *request.Request) error { return r.Expire(t0.Add(ttl + 5*time.Minute)) }, ended: t0.Add(ttl + 5*time.Minute)},
		{name: "succeeded counts from the outcome", end: finish(true), ended: t0.Add(20 * time.Minute)},
		{name: "failed counts from the outcome", end: finish(false), ended: t0.Add(20 * time.Minute)},
		{name: "executing is kept", end: approve, ended: t0.Add(time.Minute), keep: true},
		{name: "pending is kept", ended: t0, keep: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, clock := newStore(t)
			r := request.New(draft("cf-user-1", 1), t0, ttl)
			mustCreate(t, s, r)
			if tt.end != nil {
				if _, err := s.Update(ctx, r.ID, tt.end); err != nil {
					t.Fatalf("Update: %v", err)
				}
			}

			// The store sweeps as it is used; each Create gives it the chance.
			n := 0
			touch := func() {
				n++
				mustCreate(t, s, request.New(draft(fmt.Sprintf("cf-other-%d", n), 1), clock.t, ttl))
			}

			clock.t = tt.ended.Add(retention - time.Nanosecond)
			touch()
			if _, err := s.Get(ctx, r.ID); err != nil {
				t.Fatalf("Get just before retention ends = %v, want the request", err)
			}

			clock.t = tt.ended.Add(retention + time.Nanosecond)
			touch()
			_, err := s.Get(ctx, r.ID)
			switch {
			case tt.keep && err != nil:
				t.Errorf("Get after retention = %v, want the request kept", err)
			case !tt.keep && !errors.Is(err, request.ErrNotFound):
				t.Errorf("Get after retention = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestMemStorePing(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
}

func TestMemStoreStuckExecuting(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	s := request.NewMemStore(func() time.Time { return t0 }, time.Hour)
	ctx := context.Background()
	r := request.New(request.Draft{Requester: "U1", Target: request.Target{UserID: "x"}}, t0, time.Hour)
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if stuck, _ := s.StuckExecuting(ctx, t0.Add(time.Hour)); len(stuck) != 0 {
		t.Fatalf("a pending request counted as stuck: %+v", stuck)
	}
	if _, err := s.Update(ctx, r.ID, func(r *request.Request) error { _, err := r.Approve("U1", t0); return err }); err != nil {
		t.Fatal(err)
	}
	if stuck, _ := s.StuckExecuting(ctx, t0); len(stuck) != 0 {
		t.Errorf("executing since exactly olderThan counted as stuck")
	}
	if stuck, _ := s.StuckExecuting(ctx, t0.Add(time.Second)); len(stuck) != 1 || stuck[0].ID != r.ID {
		t.Errorf("StuckExecuting = %+v, want the executing request", stuck)
	}
}
