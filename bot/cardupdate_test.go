package bot

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"risk-reset-bot/request"
)

// failingGet is a store whose reads fail.
type failingGet struct{ request.Store }

func (failingGet) Get(context.Context, string) (*request.Request, error) {
	return nil, errors.New("store down")
}

// TestNewestStateNeverGoesBack: a card is drawn from the stored request,
// except that an ended request the store has not recorded as ended (its
// write failed) is never drawn as pending or executing again.
func TestNewestStateNeverGoesBack(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	open := func(s request.Store) *request.Request {
		r := request.New(request.Draft{Requester: "UREQ", ChannelID: "C1", Target: request.Target{UserID: "u1"}, RequiredApprovals: 1}, now, time.Hour)
		r.CardTS = "1.2"
		if err := s.Create(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	approve := func(s request.Store, r *request.Request) *request.Request {
		got, err := s.Update(context.Background(), r.ID, func(r *request.Request) error { _, err := r.Approve("ULEAD", now); return err })
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	finished := func(r *request.Request) *request.Request {
		done := r.Clone()
		if err := done.Finish(request.Outcome{At: now}, true); err != nil {
			t.Fatal(err)
		}
		return done
	}
	tests := []struct {
		name string
		// given returns the caller's copy of a request it made in the store.
		given func(s request.Store) *request.Request
		store func(s request.Store) request.Store
		want  request.State
	}{
		{name: "caller's copy older than the store", want: request.StateExecuting,
			given: func(s request.Store) *request.Request { r := open(s); approve(s, r); return r }},
		{name: "caller ended it, the store missed it", want: request.StateSucceeded,
			given: func(s request.Store) *request.Request { return finished(approve(s, open(s))) }},
		{name: "store unreadable", want: request.StatePending, given: open,
			store: func(s request.Store) request.Store { return failingGet{s} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s request.Store = request.NewMemStore(func() time.Time { return now }, time.Hour)
			given := tt.given(s)
			if tt.store != nil {
				s = tt.store(s)
			}
			b := &Bot{store: s}
			got := b.newestState(context.Background(), zerolog.Nop(), given)
			if got.State != tt.want || got.CardTS != given.CardTS || got.ChannelID != given.ChannelID {
				t.Errorf("drawn as %s at %s/%s, want %s at %s/%s", got.State, got.ChannelID, got.CardTS, tt.want, given.ChannelID, given.CardTS)
			}
		})
	}
}
