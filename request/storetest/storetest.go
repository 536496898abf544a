// Package storetest checks that an implementation of request.Store keeps
// the contract the bot relies on, so that every store is held to the same
// behaviour. Like net/http/httptest it is meant to be imported by tests
// only.
//
// Run holds the behaviour every store shares. Behaviour that belongs to one
// implementation, such as how it forgets old requests or how it behaves
// when shared by several processes, stays in that implementation's tests,
// which can build on the fixtures and helpers here.
package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"risk-reset-bot/request"
)

// T0 is the time the fixtures are built around and the clock Run gives
// the stores. Treat it as a constant.
var T0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// Fixture values: the lifetime of a pending request, the requester of
// every Draft and two approvers other than the requester.
const (
	TTL       = 30 * time.Minute
	Requester = "UREQ"
	LeadA     = "ULEADA"
	LeadB     = "ULEADB"
)

// Clicks is how many goroutines RaceApprove runs at once.
const Clicks = 50

// Draft returns a draft by Requester for the target userID needing
// required approvals.
func Draft(userID string, required int) request.Draft {
	return request.Draft{
		Requester:         Requester,
		ChannelID:         "CSOC",
		Target:            request.Target{UserID: userID, Email: userID + "@example.com", Name: "Target " + userID},
		Risk:              request.Risk{Level: "high", Events: 3},
		Reason:            "false positive after travel",
		RequiredApprovals: required,
	}
}

// Snapshot deep-copies r without using Clone, so that tests of Clone and of
// a store's copying compare against something Clone cannot have shared.
func Snapshot(r *request.Request) *request.Request {
	c := *r
	c.Approvals = append([]request.Approval(nil), r.Approvals...)
	if r.Outcome != nil {
		o := *r.Outcome
		c.Outcome = &o
	}
	return &c
}

// MustCreate stores r in s, failing the test when s refuses it.
func MustCreate(t *testing.T, s request.Store, r *request.Request) {
	t.Helper()
	if err := s.Create(context.Background(), r); err != nil {
		t.Fatalf("Create(%s): %v", r.ID, err)
	}
}

// MustGet returns the request id from s, failing the test when s has none.
func MustGet(t *testing.T, s request.Store, id string) *request.Request {
	t.Helper()
	r, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

// MustUpdate applies fn to the request id in s and returns the result,
// failing the test on any error.
func MustUpdate(t *testing.T, s request.Store, id string, fn func(*request.Request) error) *request.Request {
	t.Helper()
	r, err := s.Update(context.Background(), id, fn)
	if err != nil {
		t.Fatalf("Update(%s): %v", id, err)
	}
	return r
}

// RaceApprove has Clicks goroutines approve the pending request id at once,
// click i as actor(i) through stores[i%len(stores)], and checks that exactly
// one of them starts the reset, that required-1 more are accepted as
// approvals, that the rest lose to the started reset, and that every store
// then holds the request executing. Pass several stores sharing their data
// to race them as replicas of the bot would.
func RaceApprove(t *testing.T, stores []request.Store, id string, required int, actor func(click int) string) {
	t.Helper()
	results := approveAtOnce(stores, id, actor)
	approvals := max(required, 1)
	wantAccepted := approvals - 1
	var executed, accepted, lost int
	for _, res := range results {
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
	if executed != 1 || accepted != wantAccepted || lost != Clicks-approvals {
		t.Errorf("executed %d, accepted %d, lost %d; want 1, %d, %d", executed, accepted, lost, wantAccepted, Clicks-approvals)
	}
	for i, s := range stores {
		got := MustGet(t, s, id)
		if got.State != request.StateExecuting || len(got.Approvals) != approvals {
			t.Errorf("store %d holds state %q with %d approvals, want executing with %d", i, got.State, len(got.Approvals), approvals)
		}
	}
}

type approveResult struct {
	execute bool
	err     error
}

// approveAtOnce releases Clicks approvals of id together and returns what
// each one got.
func approveAtOnce(stores []request.Store, id string, actor func(int) string) []approveResult {
	ctx := context.Background()
	now := T0.Add(time.Minute)
	results := make([]approveResult, Clicks)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range Clicks {
		wg.Go(func() {
			<-start
			var execute bool
			_, err := stores[i%len(stores)].Update(ctx, id, func(cur *request.Request) error {
				var err error
				execute, err = cur.Approve(actor(i), now)
				return err
			})
			results[i] = approveResult{execute, err}
		})
	}
	close(start)
	wg.Wait()
	return results
}
