package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"risk-reset-bot/redisstore"
	"risk-reset-bot/request"
	"risk-reset-bot/request/storetest"
)

// TestReplicasShareOnceOnlyApproval races approvals through two stores with
// their own connections, as two replicas would receive the storetest.Clicks.
func TestReplicasShareOnceOnlyApproval(t *testing.T) {
	tests := []struct {
		name     string
		required int
		actor    func(i int) string
	}{
		{"self-confirm, same person clicking", 0, func(int) string { return storetest.Requester }},
		{"two approvals, distinct approvers", 2, func(i int) string { return fmt.Sprintf("ULEAD%02d", i) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := newPrefix(t)
			r := request.New(storetest.Draft("cf-user-1", tt.required), t0, ttl)
			storetest.MustCreate(t, newStore(t, prefix, fixedClock), r)
			g := newGate(t, storetest.Clicks)
			a, b := newStore(t, prefix, fixedClock, g), newStore(t, prefix, fixedClock, g)
			storetest.RaceApprove(t, []request.Store{a, b}, r.ID, tt.required, tt.actor)

			stuck, err := b.Unsettled(context.Background(), t0.Add(time.Hour))
			if err != nil || len(stuck) != 1 || stuck[0].ID != r.ID {
				t.Errorf("Unsettled on the other replica = %v, %v; want the approved request", stuck, err)
			}
		})
	}
}

func TestReplicasCreateOnePendingPerTarget(t *testing.T) {
	const replicas = 10
	prefix := newPrefix(t)
	g := newGate(t, replicas)
	results := make(chan error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replicas {
		s := newStore(t, prefix, fixedClock, g)
		wg.Go(func() {
			<-start
			d := storetest.Draft("cf-user-1", 1)
			d.ID = fmt.Sprintf("req-%d", i)
			results <- s.Create(context.Background(), request.New(d, t0, ttl))
		})
	}
	close(start)
	wg.Wait()
	close(results)
	created := 0
	for err := range results {
		var dup *request.DuplicateError
		switch {
		case err == nil:
			created++
		case !errors.As(err, &dup):
			t.Errorf("Create = %v, want nil or *DuplicateError", err)
		}
	}
	if created != 1 {
		t.Errorf("%d replicas created a pending request for one target, want 1", created)
	}
}

func TestReplicasFirstDelivery(t *testing.T) {
	const deliveries = 50
	envTTL := 10 * time.Minute
	prefix := newPrefix(t)
	stores := []*redisstore.Store{newStore(t, prefix, fixedClock), newStore(t, prefix, fixedClock)}
	firsts := make(chan bool, deliveries)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range deliveries {
		wg.Go(func() {
			<-start
			first, err := stores[i%2].FirstDelivery(context.Background(), "env-1", envTTL)
			if err != nil {
				t.Errorf("FirstDelivery: %v", err)
			}
			firsts <- first
		})
	}
	close(start)
	wg.Wait()
	close(firsts)
	n := 0
	for first := range firsts {
		if first {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d deliveries of one envelope were first, want 1", n)
	}

	// Redis forgets the envelope once ttl has passed.
	left, err := newClient(t).PTTL(context.Background(), prefix+"env:env-1").Result()
	if err != nil || left <= envTTL-time.Minute || left > envTTL {
		t.Errorf("envelope key expires in %v (%v), want just under %v", left, err, envTTL)
	}
}

func TestKeyLifetimes(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	s := newStore(t, prefix, fixedClock)
	admin := newClient(t)
	expiresIn := func(key string) time.Duration {
		t.Helper()
		d, err := admin.PTTL(ctx, prefix+key).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", key, err)
		}
		return d
	}
	near := func(got, want time.Duration) bool { return got <= want && got > want-time.Minute }
	const noExpiry, noKey = time.Duration(-1), time.Duration(-2)

	r := request.New(storetest.Draft("cf-user-1", 1), t0, ttl)
	storetest.MustCreate(t, s, r)
	if got := expiresIn("req:" + r.ID); !near(got, ttl+retention) {
		t.Errorf("pending request expires in %v, want %v (until expiry, then retention)", got, ttl+retention)
	}
	if got := expiresIn("pending:cf-user-1"); !near(got, ttl+retention) {
		t.Errorf("pending index expires in %v, want %v", got, ttl+retention)
	}

	storetest.MustUpdate(t, s, r.ID, func(r *request.Request) error {
		_, err := r.Approve(storetest.LeadA, t0.Add(time.Minute))
		return err
	})
	if got := expiresIn("req:" + r.ID); got != noExpiry {
		t.Errorf("executing request expires in %v, want never", got)
	}
	if got := expiresIn("pending:cf-user-1"); got != noKey {
		t.Errorf("pending index after approval has PTTL %v, want it deleted", got)
	}

	storetest.MustUpdate(t, s, r.ID, func(r *request.Request) error { return r.Finish(request.Outcome{At: t0}, false) })
	if got := expiresIn("req:" + r.ID); got != noExpiry {
		t.Errorf("failed request whose outcome is not shown yet expires in %v, want never", got)
	}
	storetest.MustUpdate(t, s, r.ID, func(r *request.Request) error { r.Announced(); return nil })
	if got := expiresIn("req:" + r.ID); !near(got, retention) {
		t.Errorf("failed request, shown, expires in %v, want %v", got, retention)
	}

	late := request.New(storetest.Draft("cf-user-2", 1), t0.Add(-3*time.Hour), ttl)
	storetest.MustCreate(t, s, late)
	if got := expiresIn("req:" + late.ID); !near(got, retention) {
		t.Errorf("request created long past its expiry expires in %v, want %v", got, retention)
	}
	storetest.MustUpdate(t, s, late.ID, func(r *request.Request) error { return r.Expire(t0) })
	if got := expiresIn("req:" + late.ID); !near(got, retention) {
		t.Errorf("expired request expires in %v, want %v", got, retention)
	}
}

func TestKeyLayout(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	s := newStore(t, prefix, fixedClock)
	admin := newClient(t)
	a := request.New(storetest.Draft("cf-user-a", 1), t0, ttl)
	b := request.New(storetest.Draft("cf-user-b", 1), t0, ttl)
	storetest.MustCreate(t, s, a)
	storetest.MustCreate(t, s, b)
	storetest.MustUpdate(t, s, b.ID, func(r *request.Request) error { _, err := r.Approve(storetest.LeadA, t0); return err })
	if _, err := s.FirstDelivery(ctx, "env-1", time.Minute); err != nil {
		t.Fatalf("FirstDelivery: %v", err)
	}

	keys, err := admin.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	slices.Sort(keys)
	want := []string{
		prefix + "due",
		prefix + "env:env-1",
		prefix + "executing",
		prefix + "pending:cf-user-a",
		prefix + "req:" + a.ID,
		prefix + "req:" + b.ID,
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
	if id, err := admin.Get(ctx, prefix+"pending:cf-user-a").Result(); err != nil || id != a.ID {
		t.Errorf("pending index = %q, %v; want %q", id, err, a.ID)
	}
}

// TestListsSkipExpiredKeys covers requests whose key Redis expired while
// their id stayed listed.
func TestListsSkipExpiredKeys(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	s := newStore(t, prefix, fixedClock)
	admin := newClient(t)
	gone := request.New(storetest.Draft("cf-gone", 1), t0.Add(-time.Hour), ttl)
	kept := request.New(storetest.Draft("cf-kept", 1), t0.Add(-time.Hour), ttl)
	storetest.MustCreate(t, s, gone)
	storetest.MustCreate(t, s, kept)
	if err := admin.Del(ctx, prefix+"req:"+gone.ID).Err(); err != nil {
		t.Fatalf("DEL: %v", err)
	}

	due, err := s.DuePending(ctx, t0)
	if err != nil || len(due) != 1 || due[0].ID != kept.ID {
		t.Fatalf("DuePending = %v, %v; want only %s", due, err, kept.ID)
	}
	if n, err := s.CountPending(ctx); err != nil || n != 1 {
		t.Errorf("CountPending after the listing = %d, %v; want 1", n, err)
	}
	if err := s.Create(ctx, request.New(storetest.Draft("cf-gone", 1), t0, ttl)); err != nil {
		t.Errorf("Create for a target whose pending request expired = %v, want nil", err)
	}
}

// TestUpdateGivesUpUnderEndlessConflict rewrites the request behind every
// attempt, so no attempt can commit.
func TestUpdateGivesUpUnderEndlessConflict(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	s := newStore(t, prefix, fixedClock)
	admin := newClient(t)
	r := request.New(storetest.Draft("cf-user-1", 1), t0, ttl)
	storetest.MustCreate(t, s, r)
	key := prefix + "req:" + r.ID
	raw, err := admin.Get(ctx, key).Result()
	if err != nil {
		t.Fatalf("GET: %v", err)
	}

	calls := 0
	got, err := s.Update(ctx, r.ID, func(cur *request.Request) error {
		calls++
		if err := admin.Set(ctx, key, raw, time.Hour).Err(); err != nil {
			t.Errorf("SET: %v", err)
		}
		_, err := cur.Approve(storetest.LeadA, t0.Add(time.Minute))
		return err
	})
	if !errors.Is(err, redisstore.ErrConflict) || got != nil {
		t.Errorf("Update = %v, %v; want nil, ErrConflict", got, err)
	}
	if calls != 50 {
		t.Errorf("fn ran %d times, want 50 attempts", calls)
	}
	if stored := storetest.MustGet(t, s, r.ID); stored.State != request.StatePending || len(stored.Approvals) != 0 {
		t.Errorf("stored %+v after giving up, want it unchanged", stored)
	}
}

func TestFailedUpdateLeavesKeysUntouched(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	s := newStore(t, prefix, fixedClock)
	admin := newClient(t)
	r := request.New(storetest.Draft("cf-user-1", 1), t0, ttl)
	storetest.MustCreate(t, s, r)
	dump := func() map[string]string {
		t.Helper()
		keys, err := admin.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatalf("KEYS: %v", err)
		}
		m := make(map[string]string)
		for _, k := range keys {
			v, err := admin.Dump(ctx, k).Result()
			if err != nil {
				t.Fatalf("DUMP %s: %v", k, err)
			}
			m[k] = v
		}
		return m
	}
	before := dump()
	_, err := s.Update(ctx, r.ID, func(r *request.Request) error {
		if err := r.Reject(storetest.Requester, "", t0); err != nil {
			return err
		}
		return errors.New("boom")
	})
	if err == nil {
		t.Fatal("Update = nil, want fn's error")
	}
	after := dump()
	if len(after) != len(before) {
		t.Fatalf("keys changed from %d to %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("key %s changed", k)
		}
	}
}

// TestRedisDown uses a client of a port where nothing listens, leaving the
// shared server alone.
func TestRedisDown(t *testing.T) {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: deadAddr(t), MaxRetries: -1, DialTimeout: time.Second})
	s := redisstore.New(client, redisstore.Options{Now: fixedClock})
	t.Cleanup(func() { _ = s.Close() })

	if err := s.Ping(ctx); err == nil {
		t.Error("Ping = nil, want an error")
	}
	r := request.New(storetest.Draft("cf-user-1", 1), t0, ttl)
	if err := s.Create(ctx, r); err == nil {
		t.Error("Create = nil, want an error")
	}
	if _, err := s.Get(ctx, r.ID); err == nil || errors.Is(err, request.ErrNotFound) {
		t.Errorf("Get = %v, want an error other than not found", err)
	}
	called := false
	if _, err := s.Update(ctx, r.ID, func(*request.Request) error { called = true; return nil }); err == nil || errors.Is(err, request.ErrNotFound) {
		t.Errorf("Update = %v, want an error other than not found", err)
	}
	if called {
		t.Error("Update ran fn without reading the request")
	}
	if _, err := s.DuePending(ctx, t0); err == nil {
		t.Error("DuePending = nil, want an error")
	}
	if _, err := s.CountPending(ctx); err == nil {
		t.Error("CountPending = nil, want an error")
	}
	if _, err := s.Unsettled(ctx, t0); err == nil {
		t.Error("Unsettled = nil, want an error")
	}
	if first, err := s.FirstDelivery(ctx, "env-1", time.Minute); err == nil {
		t.Errorf("FirstDelivery = %v, nil; want an error", first)
	}
}
