package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"risk-reset-bot/request"
)

// makeStore returns an empty store whose clock is now.
type makeStore func(t *testing.T, now func() time.Time) request.Store

// TestConformance runs the same behaviour against MemStore and the Redis
// store, so the bot sees one contract whichever it is given.
func TestConformance(t *testing.T) {
	stores := []struct {
		name string
		make makeStore
	}{
		{"memory", func(_ *testing.T, now func() time.Time) request.Store {
			return request.NewMemStore(now, retention)
		}},
		{"redis", func(t *testing.T, now func() time.Time) request.Store {
			return newStore(t, newPrefix(t), now)
		}},
	}
	cases := []struct {
		name string
		run  func(*testing.T, makeStore)
	}{
		{"create and get round trip every field", testRoundTrip},
		{"times keep their instant and offset", testTimeOffsets},
		{"returned requests are copies", testReturnsCopies},
		{"unknown id", testUnknownID},
		{"duplicate pending", testDuplicatePending},
		{"create after the first leaves pending", testCreateAfterLeavingPending},
		{"update returns what is stored", testUpdateReturnsStored},
		{"failed update changes nothing", testUpdateErrorChangesNothing},
		{"update is atomic", testUpdateIsAtomic},
		{"due pending", testDuePending},
		{"count pending", testCountPending},
		{"first delivery", testFirstDelivery},
		{"ping", testPing},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, st.make) })
			}
		})
	}
}

func mustCreate(t *testing.T, s request.Store, r *request.Request) {
	t.Helper()
	if err := s.Create(context.Background(), r); err != nil {
		t.Fatalf("Create(%s): %v", r.ID, err)
	}
}

func mustGet(t *testing.T, s request.Store, id string) *request.Request {
	t.Helper()
	r, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

func mustUpdate(t *testing.T, s request.Store, id string, fn func(*request.Request) error) *request.Request {
	t.Helper()
	r, err := s.Update(context.Background(), id, fn)
	if err != nil {
		t.Fatalf("Update(%s): %v", id, err)
	}
	return r
}

func testRoundTrip(t *testing.T, mk makeStore) {
	want := fullRequest("cf-user-1")
	if zero := zeroFields(reflect.ValueOf(want), "Request"); len(zero) > 0 {
		t.Fatalf("fixture leaves %v unset; set them so the round trip covers them", zero)
	}
	states := []request.State{request.StatePending, request.StateExecuting, request.StateSucceeded}
	for _, state := range states {
		t.Run(string(state), func(t *testing.T) {
			s := mk(t, fixedClock)
			r := snapshot(want)
			r.State = state
			mustCreate(t, s, r)
			if got := mustGet(t, s, r.ID); !reflect.DeepEqual(got, r) {
				t.Errorf("Get after Create:\n got %+v\nwant %+v", got, r)
			}
			got := mustUpdate(t, s, r.ID, func(*request.Request) error { return nil })
			if !reflect.DeepEqual(got, r) {
				t.Errorf("Update with no change returned:\n got %+v\nwant %+v", got, r)
			}
			if got := mustGet(t, s, r.ID); !reflect.DeepEqual(got, r) {
				t.Errorf("Get after Update:\n got %+v\nwant %+v", got, r)
			}
		})
	}
}

func testTimeOffsets(t *testing.T, mk makeStore) {
	s := mk(t, fixedClock)
	r := request.New(draft("cf-user-1", 1), t0.In(time.FixedZone("IST", 5*3600+1800)).Add(time.Nanosecond), ttl)
	mustCreate(t, s, r)
	got := mustGet(t, s, r.ID)
	for _, tt := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, r.CreatedAt},
		{"ExpiresAt", got.ExpiresAt, r.ExpiresAt},
	} {
		_, gotOffset := tt.got.Zone()
		_, wantOffset := tt.want.Zone()
		if !tt.got.Equal(tt.want) || gotOffset != wantOffset {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func testReturnsCopies(t *testing.T, mk makeStore) {
	s := mk(t, fixedClock)
	r := fullRequest("cf-user-1")
	want := snapshot(r)
	mustCreate(t, s, r)
	r.State = request.StateDenied
	r.Approvals[0].By = "UINTRUDER"
	r.Outcome.Detail = "tampered"

	got := mustGet(t, s, want.ID)
	got.Approvals[0].By = "UINTRUDER"
	got.Outcome.Detail = "tampered"
	updated := mustUpdate(t, s, want.ID, func(*request.Request) error { return nil })
	updated.Approvals[1].By = "UINTRUDER"

	if again := mustGet(t, s, want.ID); !reflect.DeepEqual(again, want) {
		t.Errorf("mutating a request given to or returned by the store changed it:\n got %+v\nwant %+v", again, want)
	}
}

func testUnknownID(t *testing.T, mk makeStore) {
	ctx := context.Background()
	s := mk(t, fixedClock)
	if _, err := s.Get(ctx, "no-such-id"); !errors.Is(err, request.ErrNotFound) {
		t.Errorf("Get unknown = %v, want ErrNotFound", err)
	}
	called := false
	got, err := s.Update(ctx, "no-such-id", func(*request.Request) error { called = true; return nil })
	if !errors.Is(err, request.ErrNotFound) || got != nil {
		t.Errorf("Update unknown = %v, %v; want nil, ErrNotFound", got, err)
	}
	if called {
		t.Error("Update called fn for an unknown request")
	}
}

func testDuplicatePending(t *testing.T, mk makeStore) {
	ctx := context.Background()
	s := mk(t, fixedClock)
	first := fullRequest("cf-user-1")
	mustCreate(t, s, first)

	second := request.New(draft("cf-user-1", 1), t0.Add(time.Minute), ttl)
	err := s.Create(ctx, second)
	var dup *request.DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("Create of a second pending request = %v, want *DuplicateError", err)
	}
	if !reflect.DeepEqual(dup.Existing, first) {
		t.Errorf("DuplicateError.Existing = %+v, want %+v", dup.Existing, first)
	}
	if want := (&request.DuplicateError{Existing: first}).Error(); err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if _, err := s.Get(ctx, second.ID); !errors.Is(err, request.ErrNotFound) {
		t.Errorf("refused duplicate was stored: Get = %v", err)
	}
	if err := s.Create(ctx, request.New(draft("cf-user-2", 1), t0, ttl)); err != nil {
		t.Errorf("Create for another target = %v, want nil", err)
	}
}

func testCreateAfterLeavingPending(t *testing.T, mk makeStore) {
	tests := []struct {
		name  string
		leave func(r *request.Request) error
	}{
		{"approved", func(r *request.Request) error { _, err := r.Approve(leadA, t0.Add(time.Minute)); return err }},
		{"cancelled", func(r *request.Request) error { return r.Reject(requester, "", t0.Add(time.Minute)) }},
		{"denied", func(r *request.Request) error { return r.Reject(leadA, "no", t0.Add(time.Minute)) }},
		{"expired", func(r *request.Request) error { return r.Expire(t0.Add(ttl)) }},
		{"aborted", func(r *request.Request) error { return r.Abort("card not posted", t0.Add(time.Minute)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := mk(t, fixedClock)
			first := request.New(draft("cf-user-1", 1), t0, ttl)
			mustCreate(t, s, first)
			mustUpdate(t, s, first.ID, tt.leave)

			second := request.New(draft("cf-user-1", 1), t0.Add(ttl), ttl)
			if err := s.Create(ctx, second); err != nil {
				t.Fatalf("Create after the first left pending = %v, want nil", err)
			}
			var dup *request.DuplicateError
			err := s.Create(ctx, request.New(draft("cf-user-1", 1), t0.Add(ttl), ttl))
			if !errors.As(err, &dup) || dup.Existing.ID != second.ID {
				t.Errorf("third Create = %v, want *DuplicateError naming %s", err, second.ID)
			}
			// Ending the first again must not free the second's target.
			mustUpdate(t, s, first.ID, func(r *request.Request) error { r.CardTS = "1.2"; return nil })
			if err := s.Create(ctx, request.New(draft("cf-user-1", 1), t0.Add(ttl), ttl)); !errors.As(err, &dup) {
				t.Errorf("Create after updating the old request = %v, want *DuplicateError", err)
			}
		})
	}
}

func testUpdateReturnsStored(t *testing.T, mk makeStore) {
	s := mk(t, fixedClock)
	r := request.New(draft("cf-user-1", 2), t0, ttl)
	mustCreate(t, s, r)
	got := mustUpdate(t, s, r.ID, func(r *request.Request) error {
		_, err := r.Approve(leadA, t0.Add(time.Minute))
		return err
	})
	if len(got.Approvals) != 1 || got.Approvals[0].By != leadA || got.State != request.StatePending {
		t.Fatalf("Update returned %+v, want one approval by %s, still pending", got, leadA)
	}
	if stored := mustGet(t, s, r.ID); !reflect.DeepEqual(stored, got) {
		t.Errorf("Get after Update = %+v, want what Update returned %+v", stored, got)
	}
}

func testUpdateErrorChangesNothing(t *testing.T, mk makeStore) {
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
			s := mk(t, fixedClock)
			r := request.New(draft("cf-user-1", 2), t0, ttl)
			if _, err := r.Approve(leadA, t0.Add(time.Minute)); err != nil {
				t.Fatalf("Approve: %v", err)
			}
			mustCreate(t, s, r)
			want := snapshot(r)

			returned, err := s.Update(ctx, r.ID, tt.fn)
			if err != tt.want {
				t.Fatalf("Update = %v, want exactly %v", err, tt.want)
			}
			if !reflect.DeepEqual(returned, want) {
				t.Errorf("failed Update returned %+v, want the stored request %+v", returned, want)
			}
			if got := mustGet(t, s, r.ID); !reflect.DeepEqual(got, want) {
				t.Errorf("failed Update changed the store:\n got %+v\nwant %+v", got, want)
			}
			var dup *request.DuplicateError
			if err := s.Create(ctx, request.New(draft("cf-user-1", 2), t0, ttl)); !errors.As(err, &dup) {
				t.Errorf("Create after failed Update = %v, want *DuplicateError", err)
			}
			if due, err := s.DuePending(ctx, t0.Add(ttl)); err != nil || len(due) != 1 {
				t.Errorf("DuePending after failed Update = %d requests, %v; want the one", len(due), err)
			}
		})
	}
}

const clicks = 50

// raceApprove has clicks goroutines approve id at once, spreading them over
// stores, and checks that exactly one starts the reset.
func raceApprove(t *testing.T, stores []request.Store, id string, required int, actor func(int) string) {
	t.Helper()
	type result struct {
		execute bool
		err     error
	}
	ctx := context.Background()
	now := t0.Add(time.Minute)
	results := make(chan result, clicks)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clicks {
		wg.Go(func() {
			<-start
			var execute bool
			_, err := stores[i%len(stores)].Update(ctx, id, func(cur *request.Request) error {
				var err error
				execute, err = cur.Approve(actor(i), now)
				return err
			})
			results <- result{execute, err}
		})
	}
	close(start)
	wg.Wait()
	close(results)

	wantAccepted := max(required, 1) - 1
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
	if executed != 1 || accepted != wantAccepted || lost != clicks-1-wantAccepted {
		t.Errorf("executed %d, accepted %d, lost %d; want 1, %d, %d", executed, accepted, lost, wantAccepted, clicks-1-wantAccepted)
	}
	for i, s := range stores {
		got := mustGet(t, s, id)
		if got.State != request.StateExecuting || len(got.Approvals) != max(required, 1) {
			t.Errorf("store %d holds state %q with %d approvals, want executing with %d", i, got.State, len(got.Approvals), max(required, 1))
		}
	}
}

func testUpdateIsAtomic(t *testing.T, mk makeStore) {
	tests := []struct {
		name     string
		required int
		actor    func(i int) string
	}{
		{"self-confirm, same person clicking", 0, func(int) string { return requester }},
		{"two approvals, distinct approvers", 2, func(i int) string { return fmt.Sprintf("ULEAD%02d", i) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mk(t, fixedClock)
			r := request.New(draft("cf-user-1", tt.required), t0, ttl)
			mustCreate(t, s, r)
			raceApprove(t, []request.Store{s}, r.ID, tt.required, tt.actor)
		})
	}
}

func testDuePending(t *testing.T, mk makeStore) {
	ctx := context.Background()
	s := mk(t, fixedClock)
	now := t0.Add(ttl)
	add := func(userID string, created time.Time) *request.Request {
		r := request.New(draft(userID, 1), created, ttl)
		mustCreate(t, s, r)
		return r
	}
	dueNow := add("cf-due-now", t0)                         // expires exactly at now
	overdue := add("cf-overdue", t0.Add(-time.Hour))        // expired long ago
	add("cf-not-yet", t0.Add(time.Nanosecond))              // expires just after now
	add("cf-later", t0.Add(time.Millisecond))               // a whole millisecond after
	decidedOverdue := add("cf-decided", t0.Add(-time.Hour)) // due, but already approved
	mustUpdate(t, s, decidedOverdue.ID, func(r *request.Request) error {
		_, err := r.Approve(leadA, t0.Add(-50*time.Minute))
		return err
	})
	mustCreate(t, s, &request.Request{ID: "created-ended", Target: request.Target{UserID: "cf-ended"},
		ExpiresAt: t0.Add(-time.Hour), State: request.StateCancelled})

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
	if none, err := s.DuePending(ctx, t0.Add(-2*time.Hour)); err != nil || len(none) != 0 {
		t.Errorf("DuePending before anything is due = %d requests, %v; want none", len(none), err)
	}
}

func testCountPending(t *testing.T, mk makeStore) {
	ctx := context.Background()
	s := mk(t, fixedClock)
	count := func() int {
		t.Helper()
		n, err := s.CountPending(ctx)
		if err != nil {
			t.Fatalf("CountPending: %v", err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Errorf("CountPending of an empty store = %d, want 0", n)
	}
	var ids []string
	for i := range 3 {
		r := request.New(draft(fmt.Sprintf("cf-user-%d", i), 1), t0, ttl)
		mustCreate(t, s, r)
		ids = append(ids, r.ID)
	}
	mustUpdate(t, s, ids[0], func(r *request.Request) error { return r.Reject(leadA, "", t0.Add(time.Minute)) })
	mustUpdate(t, s, ids[1], func(r *request.Request) error { r.CardTS = "1.2"; return nil })
	if n := count(); n != 2 {
		t.Errorf("CountPending after one of three ended = %d, want 2", n)
	}
}

func testFirstDelivery(t *testing.T, mk makeStore) {
	ctx := context.Background()
	s := mk(t, fixedClock)
	steps := []struct {
		id   string
		want bool
	}{
		{"env-1", true},
		{"env-1", false},
		{"env-2", true},
		{"env-1", false},
		{"env-2", false},
	}
	for i, st := range steps {
		got, err := s.FirstDelivery(ctx, st.id, 10*time.Minute)
		if err != nil {
			t.Fatalf("step %d: FirstDelivery: %v", i, err)
		}
		if got != st.want {
			t.Errorf("step %d: FirstDelivery(%q) = %v, want %v", i, st.id, got, st.want)
		}
	}
}

func testPing(t *testing.T, mk makeStore) {
	if err := mk(t, fixedClock).Ping(context.Background()); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
}
