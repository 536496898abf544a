package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"risk-reset-bot/request"
)

// Open returns an empty store, sharing nothing with the stores of other
// calls, whose clock is now. It releases the store with t.Cleanup, and may
// skip or fail t when the store cannot be had.
type Open func(t *testing.T, now func() time.Time) request.Store

// Run checks, in subtests each given a store of its own by open, the
// behaviour that every request.Store must have.
func Run(t *testing.T, open Open) {
	t.Helper()
	cases := []struct {
		name string
		run  func(*testing.T, Open)
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
		{"unsettled", testUnsettled},
		{"first delivery", testFirstDelivery},
		{"first delivery without ttl remembers nothing", testFirstDeliveryWithoutTTL},
		{"ping", testPing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

func fixedClock() time.Time { return T0 }

// fullRequest has every field set, times with nanoseconds, so a field the
// store drops or rounds shows up in a comparison.
func fullRequest(userID string) *request.Request {
	return &request.Request{
		ID:                "req-" + userID,
		Requester:         Requester,
		ChannelID:         "CSOC",
		CardTS:            "1741082400.000100",
		AuditTS:           "1741082460.000200",
		Target:            request.Target{UserID: userID, Email: userID + "@example.com", Name: "Target Ü " + userID},
		Risk:              request.Risk{Level: "high", Events: 7, Unavailable: "events: timed out"},
		Reason:            "false positive \"after\" travel\n<script>",
		CreatedAt:         T0.Add(123456789 * time.Nanosecond),
		ExpiresAt:         T0.Add(TTL + 987654321*time.Nanosecond),
		RequiredApprovals: 2,
		State:             request.StatePending,
		Approvals: []request.Approval{
			{By: LeadA, At: T0.Add(time.Minute + time.Nanosecond)},
			{By: LeadB, At: T0.Add(2*time.Minute + 2*time.Nanosecond)},
		},
		DecidedBy: LeadB,
		DecidedAt: T0.Add(3*time.Minute + 3*time.Nanosecond),
		Note:      "second opinion",
		Outcome: &request.Outcome{
			Verified: true,
			Detail:   "risk score reset",
			Code:     10000,
			HTTP:     429,
			CFRay:    "8f1e2d3c4b5a6978-AMS",
			At:       T0.Add(4*time.Minute + 4*time.Nanosecond),
		},
		Unannounced: true,
	}
}

// zeroFields names the fields of v (a struct, followed through pointers
// and slices) that hold their zero value.
func zeroFields(v reflect.Value, path string) []string {
	switch {
	case v.Kind() == reflect.Pointer && !v.IsNil():
		return zeroFields(v.Elem(), path)
	case v.Kind() == reflect.Slice && v.Len() > 0:
		var zero []string
		for i := range v.Len() {
			zero = append(zero, zeroFields(v.Index(i), path+"[]")...)
		}
		return zero
	case v.Kind() == reflect.Struct && v.Type() != reflect.TypeFor[time.Time]():
		var zero []string
		for i := range v.NumField() {
			zero = append(zero, zeroFields(v.Field(i), path+"."+v.Type().Field(i).Name)...)
		}
		return zero
	case v.IsZero():
		return []string{path}
	}
	return nil
}

func testRoundTrip(t *testing.T, open Open) {
	want := fullRequest("cf-user-1")
	if zero := zeroFields(reflect.ValueOf(want), "Request"); len(zero) > 0 {
		t.Fatalf("fixture leaves %v unset; set them so the round trip covers them", zero)
	}
	states := []request.State{request.StatePending, request.StateExecuting, request.StateSucceeded}
	for _, state := range states {
		t.Run(string(state), func(t *testing.T) {
			s := open(t, fixedClock)
			r := Snapshot(want)
			r.State = state
			MustCreate(t, s, r)
			if got := MustGet(t, s, r.ID); !reflect.DeepEqual(got, r) {
				t.Errorf("Get after Create:\n got %+v\nwant %+v", got, r)
			}
			got := MustUpdate(t, s, r.ID, func(*request.Request) error { return nil })
			if !reflect.DeepEqual(got, r) {
				t.Errorf("Update with no change returned:\n got %+v\nwant %+v", got, r)
			}
			if got := MustGet(t, s, r.ID); !reflect.DeepEqual(got, r) {
				t.Errorf("Get after Update:\n got %+v\nwant %+v", got, r)
			}
		})
	}
}

func testTimeOffsets(t *testing.T, open Open) {
	s := open(t, fixedClock)
	r := request.New(Draft("cf-user-1", 1), T0.In(time.FixedZone("IST", 5*3600+1800)).Add(time.Nanosecond), TTL)
	MustCreate(t, s, r)
	got := MustGet(t, s, r.ID)
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

func testReturnsCopies(t *testing.T, open Open) {
	s := open(t, fixedClock)
	r := fullRequest("cf-user-1")
	want := Snapshot(r)
	MustCreate(t, s, r)
	// The caller keeps its pointer; changing it must not reach the store.
	r.State = request.StateDenied
	r.Approvals[0].By = "UINTRUDER"
	r.Outcome.Detail = "tampered"

	got := MustGet(t, s, want.ID)
	got.State = request.StateExecuting
	got.Approvals[0].By = "UINTRUDER"
	got.Approvals = append(got.Approvals, request.Approval{By: "UINTRUDER"})
	got.Outcome.Detail = "tampered"
	updated := MustUpdate(t, s, want.ID, func(*request.Request) error { return nil })
	updated.Approvals[1].By = "UINTRUDER"
	updated.Outcome = nil

	if again := MustGet(t, s, want.ID); !reflect.DeepEqual(again, want) {
		t.Errorf("mutating a request given to or returned by the store changed it:\n got %+v\nwant %+v", again, want)
	}
}

func testUnknownID(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, fixedClock)
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

func testDuplicatePending(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, fixedClock)
	first := fullRequest("cf-user-1")
	MustCreate(t, s, first)

	second := request.New(Draft("cf-user-1", 1), T0.Add(time.Minute), TTL)
	err := s.Create(ctx, second)
	var dup *request.DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("Create of a second pending request = %v, want *DuplicateError", err)
	}
	if !reflect.DeepEqual(dup.Existing, first) {
		t.Errorf("DuplicateError.Existing = %+v, want %+v", dup.Existing, first)
	}
	// Callers show the text as it is, so it must not be wrapped.
	msg := err.Error()
	if want := (&request.DuplicateError{Existing: first}).Error(); msg != want {
		t.Errorf("Error() = %q, want %q", msg, want)
	}
	if !strings.Contains(msg, first.ID) || !strings.Contains(msg, "cf-user-1") {
		t.Errorf("Error() = %q, want it to name the user and the pending request", msg)
	}
	if _, err := s.Get(ctx, second.ID); !errors.Is(err, request.ErrNotFound) {
		t.Errorf("refused duplicate was stored: Get = %v", err)
	}
	dup.Existing.State = request.StateCancelled
	if got := MustGet(t, s, first.ID); got.State != request.StatePending {
		t.Errorf("mutating DuplicateError.Existing changed the store: state %q", got.State)
	}
	if err := s.Create(ctx, request.New(Draft("cf-user-2", 1), T0, TTL)); err != nil {
		t.Errorf("Create for another target = %v, want nil", err)
	}
}

func testCreateAfterLeavingPending(t *testing.T, open Open) {
	tests := []struct {
		name  string
		leave func(r *request.Request) error
	}{
		{"approved", func(r *request.Request) error { _, err := r.Approve(LeadA, T0.Add(time.Minute)); return err }},
		{"cancelled", func(r *request.Request) error { return r.Reject(Requester, "", T0.Add(time.Minute)) }},
		{"denied", func(r *request.Request) error { return r.Reject(LeadA, "no", T0.Add(time.Minute)) }},
		{"expired", func(r *request.Request) error { return r.Expire(T0.Add(TTL)) }},
		{"aborted", func(r *request.Request) error { return r.Abort("card not posted", T0.Add(time.Minute)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, fixedClock)
			first := request.New(Draft("cf-user-1", 1), T0, TTL)
			MustCreate(t, s, first)
			MustUpdate(t, s, first.ID, tt.leave)

			second := request.New(Draft("cf-user-1", 1), T0.Add(TTL), TTL)
			if err := s.Create(ctx, second); err != nil {
				t.Fatalf("Create after the first left pending = %v, want nil", err)
			}
			// The new one is now the pending request for the target.
			var dup *request.DuplicateError
			err := s.Create(ctx, request.New(Draft("cf-user-1", 1), T0.Add(TTL), TTL))
			if !errors.As(err, &dup) || dup.Existing.ID != second.ID {
				t.Errorf("third Create = %v, want *DuplicateError naming %s", err, second.ID)
			}
			// Ending the first again must not free the second's target.
			MustUpdate(t, s, first.ID, func(r *request.Request) error { r.CardTS = "1.2"; return nil })
			if err := s.Create(ctx, request.New(Draft("cf-user-1", 1), T0.Add(TTL), TTL)); !errors.As(err, &dup) {
				t.Errorf("Create after updating the old request = %v, want *DuplicateError", err)
			}
		})
	}
}

func testUpdateReturnsStored(t *testing.T, open Open) {
	s := open(t, fixedClock)
	r := request.New(Draft("cf-user-1", 2), T0, TTL)
	MustCreate(t, s, r)
	got := MustUpdate(t, s, r.ID, func(r *request.Request) error {
		_, err := r.Approve(LeadA, T0.Add(time.Minute))
		return err
	})
	if len(got.Approvals) != 1 || got.Approvals[0].By != LeadA || got.State != request.StatePending {
		t.Fatalf("Update returned %+v, want one approval by %s, still pending", got, LeadA)
	}
	if stored := MustGet(t, s, r.ID); !reflect.DeepEqual(stored, got) {
		t.Errorf("Get after Update = %+v, want what Update returned %+v", stored, got)
	}
}

func testUpdateErrorChangesNothing(t *testing.T, open Open) {
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
				r.Approvals = append(r.Approvals, request.Approval{By: LeadB})
				r.Note = "half-done"
				return errBoom
			},
			want: errBoom,
		},
		{
			name: "transition succeeds then fn fails",
			fn: func(r *request.Request) error {
				if _, err := r.Approve(LeadB, T0.Add(2*time.Minute)); err != nil {
					return err
				}
				return errBoom
			},
			want: errBoom,
		},
		{
			name: "transition refused",
			fn:   func(r *request.Request) error { _, err := r.Approve(LeadA, T0.Add(2*time.Minute)); return err },
			want: request.ErrAlreadyApproved,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, fixedClock)
			r := request.New(Draft("cf-user-1", 2), T0, TTL)
			if _, err := r.Approve(LeadA, T0.Add(time.Minute)); err != nil {
				t.Fatalf("Approve: %v", err)
			}
			MustCreate(t, s, r)
			want := Snapshot(r)

			returned, err := s.Update(ctx, r.ID, tt.fn)
			if err != tt.want {
				t.Fatalf("Update = %v, want exactly %v", err, tt.want)
			}
			if !reflect.DeepEqual(returned, want) {
				t.Errorf("failed Update returned %+v, want the stored request %+v", returned, want)
			}
			if got := MustGet(t, s, r.ID); !reflect.DeepEqual(got, want) {
				t.Errorf("failed Update changed the store:\n got %+v\nwant %+v", got, want)
			}
			// Still the pending request for its target, and still due.
			var dup *request.DuplicateError
			if err := s.Create(ctx, request.New(Draft("cf-user-1", 2), T0, TTL)); !errors.As(err, &dup) {
				t.Errorf("Create after failed Update = %v, want *DuplicateError", err)
			}
			if due, err := s.DuePending(ctx, T0.Add(TTL)); err != nil || len(due) != 1 {
				t.Errorf("DuePending after failed Update = %d requests, %v; want the one", len(due), err)
			}
		})
	}
}

// testUpdateIsAtomic races many clicks on one card; whatever the
// interleaving, exactly one of them may start the reset.
func testUpdateIsAtomic(t *testing.T, open Open) {
	tests := []struct {
		name     string
		required int
		actor    func(i int) string
	}{
		{"self-confirm, same person clicking", 0, func(int) string { return Requester }},
		{"two approvals, distinct approvers", 2, func(i int) string { return fmt.Sprintf("ULEAD%02d", i) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, fixedClock)
			r := request.New(Draft("cf-user-1", tt.required), T0, TTL)
			MustCreate(t, s, r)
			RaceApprove(t, []request.Store{s}, r.ID, tt.required, tt.actor)
		})
	}
}

func testDuePending(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, fixedClock)
	now := T0.Add(TTL)
	add := func(userID string, created time.Time) *request.Request {
		r := request.New(Draft(userID, 1), created, TTL)
		MustCreate(t, s, r)
		return r
	}
	dueNow := add("cf-due-now", T0)                         // expires exactly at now
	overdue := add("cf-overdue", T0.Add(-time.Hour))        // expired long ago
	add("cf-not-yet", T0.Add(time.Nanosecond))              // expires just after now
	add("cf-later", T0.Add(time.Millisecond))               // a whole millisecond after
	decidedOverdue := add("cf-decided", T0.Add(-time.Hour)) // due, but already approved
	MustUpdate(t, s, decidedOverdue.ID, func(r *request.Request) error {
		_, err := r.Approve(LeadA, T0.Add(-50*time.Minute))
		return err
	})
	MustCreate(t, s, &request.Request{ID: "created-ended", Target: request.Target{UserID: "cf-ended"},
		ExpiresAt: T0.Add(-time.Hour), State: request.StateCancelled})

	due, err := s.DuePending(ctx, now)
	if !checkListed(t, "DuePending", due, err, request.StatePending, dueNow.ID, overdue.ID) {
		return
	}
	due[0].State = request.StateExpired
	if got := MustGet(t, s, due[0].ID); got.State != request.StatePending {
		t.Errorf("mutating DuePending's result changed the store: state %q", got.State)
	}
	if none, err := s.DuePending(ctx, T0.Add(-2*time.Hour)); err != nil || len(none) != 0 {
		t.Errorf("DuePending before anything is due = %d requests, %v; want none", len(none), err)
	}
}

func testCountPending(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, fixedClock)
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
	var created []string
	for i := range 3 {
		r := request.New(Draft(fmt.Sprintf("cf-user-%d", i), 1), T0, TTL)
		MustCreate(t, s, r)
		created = append(created, r.ID)
	}
	MustUpdate(t, s, created[0], func(r *request.Request) error { return r.Reject(LeadA, "", T0.Add(time.Minute)) })
	MustUpdate(t, s, created[1], func(r *request.Request) error { r.CardTS = "1.2"; return nil })
	if n := count(); n != 2 {
		t.Errorf("CountPending after one of three ended = %d, want 2", n)
	}
}

func testUnsettled(t *testing.T, open Open) {
	s := open(t, fixedClock)
	approveAt := func(userID string, at time.Time) *request.Request {
		r := request.New(Draft(userID, 1), T0.Add(-time.Hour), 2*time.Hour)
		MustCreate(t, s, r)
		return MustUpdate(t, s, r.ID, func(r *request.Request) error { _, err := r.Approve(LeadA, at); return err })
	}
	// Not on a whole millisecond, so a store that rounds times shows it.
	cutoff := T0.Add(500 * time.Microsecond)
	old := approveAt("cf-old", T0.Add(-time.Hour))
	justBefore := approveAt("cf-just-before", cutoff.Add(-time.Nanosecond))
	approveAt("cf-at-cutoff", cutoff)
	approveAt("cf-recent", cutoff.Add(time.Minute))
	// Finished long ago: listed until its outcome is shown.
	unshown := approveAt("cf-finished-unshown", T0.Add(-2*time.Hour))
	MustUpdate(t, s, unshown.ID, func(r *request.Request) error { return r.Finish(request.Outcome{At: T0.Add(-time.Hour)}, true) })
	shown := approveAt("cf-finished-shown", T0.Add(-2*time.Hour))
	MustUpdate(t, s, shown.ID, func(r *request.Request) error { return r.Finish(request.Outcome{At: T0.Add(-time.Hour)}, true) })
	MustUpdate(t, s, shown.ID, func(r *request.Request) error { r.Announced(); return nil })
	// Finished just now: its own handler is showing it.
	fresh := approveAt("cf-finished-fresh", T0.Add(-2*time.Hour))
	MustUpdate(t, s, fresh.ID, func(r *request.Request) error { return r.Finish(request.Outcome{At: cutoff}, false) })
	MustCreate(t, s, request.New(Draft("cf-pending", 1), T0.Add(-2*time.Hour), TTL))

	got, err := s.Unsettled(context.Background(), cutoff)
	if err != nil {
		t.Fatalf("Unsettled: %v", err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	want := []string{old.ID, justBefore.ID, unshown.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("Unsettled ids = %v, want the two executing before the cutoff and the finished one not shown %v", ids, want)
	}
}

func testFirstDelivery(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, fixedClock)
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

func testFirstDeliveryWithoutTTL(t *testing.T, open Open) {
	s := open(t, fixedClock)
	for range 2 {
		if first, err := s.FirstDelivery(context.Background(), "env-1", 0); !first || err != nil {
			t.Errorf("FirstDelivery with no ttl = %v, %v; want true each time", first, err)
		}
	}
}

func testPing(t *testing.T, open Open) {
	if err := open(t, fixedClock).Ping(context.Background()); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
}

// checkListed reports whether the listing call named what returned the
// requests want, in any order, all in state; it marks t failed if not.
func checkListed(t *testing.T, what string, rs []*request.Request, err error, state request.State, want ...string) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return false
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.ID)
		if r.State != state {
			t.Errorf("%s returned %s in state %q, want %q", what, r.ID, r.State, state)
		}
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s ids = %v, want %v", what, got, want)
		return false
	}
	return true
}
