package request

import (
	"context"
	"sync"
	"time"
)

// MemStore is a Store in process memory, for a single replica. Requests
// are lost on restart; a click on a card the process no longer knows gets
// ErrNotFound.
type MemStore struct {
	mu        sync.Mutex
	requests  map[string]*Request
	pending   map[string]string // target user id -> pending request id
	envelopes map[string]time.Time
	now       func() time.Time
	retention time.Duration
}

// NewMemStore returns an empty store. Requests are forgotten retention after
// they end; now is the clock that measures it.
func NewMemStore(now func() time.Time, retention time.Duration) *MemStore {
	return &MemStore{
		requests:  make(map[string]*Request),
		pending:   make(map[string]string),
		envelopes: make(map[string]time.Time),
		now:       now,
		retention: retention,
	}
}

// Create implements Store.
func (s *MemStore) Create(_ context.Context, r *Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetOld()
	if id, ok := s.pending[r.Target.UserID]; ok {
		return &DuplicateError{Existing: s.requests[id].Clone()}
	}
	s.requests[r.ID] = r.Clone()
	if r.State == StatePending {
		s.pending[r.Target.UserID] = r.ID
	}
	return nil
}

// Get implements Store.
func (s *MemStore) Get(_ context.Context, id string) (*Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return nil, ErrNotFound
	}
	return r.Clone(), nil
}

// Update implements Store.
func (s *MemStore) Update(_ context.Context, id string, fn func(*Request) error) (*Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.requests[id]
	if !ok {
		return nil, ErrNotFound
	}
	next := cur.Clone()
	if err := fn(next); err != nil {
		return cur.Clone(), err
	}
	s.store(next)
	return next.Clone(), nil
}

func (s *MemStore) store(r *Request) {
	s.requests[r.ID] = r
	if r.State != StatePending && s.pending[r.Target.UserID] == r.ID {
		delete(s.pending, r.Target.UserID)
	}
}

// CountPending implements Store.
func (s *MemStore) CountPending(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending), nil
}

// DuePending implements Store.
func (s *MemStore) DuePending(_ context.Context, now time.Time) ([]*Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*Request
	for _, id := range s.pending {
		if r := s.requests[id]; !now.Before(r.ExpiresAt) {
			due = append(due, r.Clone())
		}
	}
	return due, nil
}

// Unsettled implements Store.
func (s *MemStore) Unsettled(_ context.Context, olderThan time.Time) ([]*Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var stuck []*Request
	for _, r := range s.requests {
		if r.Unsettled() && r.UnsettledSince().Before(olderThan) {
			stuck = append(stuck, r.Clone())
		}
	}
	return stuck, nil
}

// FirstDelivery implements Store.
func (s *MemStore) FirstDelivery(_ context.Context, envelopeID string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetOld()
	now := s.now()
	if until, ok := s.envelopes[envelopeID]; ok && now.Before(until) {
		return false, nil
	}
	s.envelopes[envelopeID] = now.Add(ttl)
	return true, nil
}

// Ping implements Store; memory is always reachable.
func (s *MemStore) Ping(context.Context) error { return nil }

// forgetOld drops ended requests and envelope ids past their retention, so
// a long-running process does not grow without bound. It runs from the
// calls that add entries; a day's requests are few enough to scan each
// time. Callers hold mu.
func (s *MemStore) forgetOld() {
	now := s.now()
	for id, until := range s.envelopes {
		if !now.Before(until) {
			delete(s.envelopes, id)
		}
	}
	for id, r := range s.requests {
		if r.State.Terminal() && now.Sub(r.DecidedAt) > s.retention && (r.Outcome == nil || now.Sub(r.Outcome.At) > s.retention) {
			delete(s.requests, id)
		}
	}
}
