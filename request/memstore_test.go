package request_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"risk-reset-bot/request"
	"risk-reset-bot/request/storetest"
)

// fakeClock is the time the store sees; tests move it instead of sleeping.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

const retention = time.Hour

func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, func(_ *testing.T, now func() time.Time) request.Store {
		return request.NewMemStore(now, retention)
	})
}

// newStore returns a MemStore on a clock the test moves. MemStore measures
// the window of FirstDelivery and the retention of ended requests on it,
// which the shared suite, holding the clock still, cannot check.
func newStore(t *testing.T) (*request.MemStore, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: t0}
	return request.NewMemStore(clock.now, retention), clock
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
			storetest.MustCreate(t, s, r)
			if tt.end != nil {
				if _, err := s.Update(ctx, r.ID, tt.end); err != nil {
					t.Fatalf("Update: %v", err)
				}
			}

			// The store sweeps as it is used; each Create gives it the chance.
			n := 0
			touch := func() {
				n++
				storetest.MustCreate(t, s, request.New(draft(fmt.Sprintf("cf-other-%d", n), 1), clock.t, ttl))
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
