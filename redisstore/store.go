// Package redisstore keeps requests in Redis, so that several replicas (and
// a restarted one) share pending requests and the once-only transitions
// that request.MemStore gives a single process.
//
// Layout, every key under Options.Prefix:
//
//	req:{id}            JSON record: the request and a version bumped on each write
//	pending:{userID}    id of the target's pending request
//	due                 sorted set of pending ids, scored by ExpiresAt (unix ms)
//	executing           sorted set of unsettled ids (executing, or finished and not yet
//	                    shown), scored by UnsettledSince (unix ms)
//	env:{envelopeID}    marker of a Socket Mode envelope already handled
//
// Writes that touch several keys run in one MULTI/EXEC guarded by WATCH, so
// a Redis Cluster needs all keys in one hash slot: give a prefix with a hash
// tag, such as "{risk-reset-bot}:".
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"risk-reset-bot/request"
)

// Defaults for Options.
const (
	DefaultPrefix    = "risk-reset-bot:"
	DefaultRetention = 24 * time.Hour
)

// maxAttempts bounds the optimistic retries of one write. A conflict means
// another writer succeeded, and a request sees few writes in its life, so
// reaching it means something is rewriting keys it should not.
const maxAttempts = 50

// ErrConflict is returned when a write kept losing to concurrent writers.
var ErrConflict = errors.New("lost to concurrent writes too often")

// Options configure a Store. The zero value is usable.
type Options struct {
	Prefix    string           // namespace of every key; DefaultPrefix when empty
	Retention time.Duration    // how long ended requests are kept; DefaultRetention when not positive
	Now       func() time.Time // clock for key lifetimes; time.Now when nil
	// Log receives go-redis's own messages when set (Open only). go-redis
	// keeps one logger per process.
	Log *zerolog.Logger
}

// Store is a request.Store in Redis. It is safe for concurrent use, also
// from several processes sharing the same Redis and Prefix.
type Store struct {
	client    redis.UniversalClient
	prefix    string
	retention time.Duration
	now       func() time.Time
}

var _ request.Store = (*Store)(nil)

// New returns a Store using client. The Store owns the client: Close closes
// it.
func New(client redis.UniversalClient, opts Options) *Store {
	s := &Store{client: client, prefix: opts.Prefix, retention: opts.Retention, now: opts.Now}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Close releases the client's connections.
func (s *Store) Close() error { return s.client.Close() }

// Ping implements request.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

func (s *Store) reqKey(id string) string         { return s.prefix + "req:" + id }
func (s *Store) pendingKey(userID string) string { return s.prefix + "pending:" + userID }
func (s *Store) envKey(id string) string         { return s.prefix + "env:" + id }
func (s *Store) dueKey() string                  { return s.prefix + "due" }
func (s *Store) executingKey() string            { return s.prefix + "executing" }

// record is what is stored under req:{id}. Version counts the writes, which
// tells an operator reading the key how often it changed; the compare and
// set itself is WATCH's.
type record struct {
	Version int64
	Request *request.Request
}

func decode(id string, data []byte) (record, error) {
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return record{}, fmt.Errorf("decode request %s: %w", id, err)
	}
	if rec.Request == nil {
		return record{}, fmt.Errorf("decode request %s: no request in record", id)
	}
	return rec, nil
}

// read returns the record stored for id, or request.ErrNotFound.
func (s *Store) read(ctx context.Context, c redis.Cmdable, id string) (record, error) {
	data, err := c.Get(ctx, s.reqKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return record{}, request.ErrNotFound
	}
	if err != nil {
		return record{}, fmt.Errorf("read request %s: %w", id, err)
	}
	return decode(id, data)
}

// Get implements request.Store.
func (s *Store) Get(ctx context.Context, id string) (*request.Request, error) {
	rec, err := s.read(ctx, s.client, id)
	switch {
	case errors.Is(err, request.ErrNotFound):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	return rec.Request, nil
}

// lifetime is how long the key of r should live from now: ended requests
// for the retention, pending ones until retention after they expire (the
// sweeper ends them long before), unsettled ones until a replica settles
// them (0: no expiry).
func (s *Store) lifetime(r *request.Request) time.Duration {
	switch {
	case r.Unsettled():
		return 0
	case r.State.Terminal():
		return s.retention
	case r.State == request.StatePending:
		return max(r.ExpiresAt.Sub(s.now()), 0) + s.retention
	}
	return 0
}

// final carries an error that ends a transaction and goes to the caller
// as it is: fn's own error, a duplicate, a missing request. Callers branch
// on these and may show their text, so they are not wrapped.
type final struct{ err error }

func (f final) Error() string { return f.err.Error() }

// retry runs one optimistic transaction until it commits, fails, or has
// lost maxAttempts times to concurrent writers.
func (s *Store) retry(ctx context.Context, what string, tx func(*redis.Tx) error, keys ...string) error {
	for range maxAttempts {
		err := s.client.Watch(ctx, tx, keys...)
		var f final
		switch {
		case err == nil:
			return nil
		case errors.As(err, &f):
			return f.err
		case !errors.Is(err, redis.TxFailedErr):
			return fmt.Errorf("redisstore: %s: %w", what, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("redisstore: %s: %w", what, err)
		}
	}
	return fmt.Errorf("redisstore: %s: %w (%d attempts)", what, ErrConflict, maxAttempts)
}

// Create implements request.Store.
func (s *Store) Create(ctx context.Context, r *request.Request) error {
	data, err := json.Marshal(record{Version: 1, Request: r})
	if err != nil {
		return fmt.Errorf("redisstore: encode request %s: %w", r.ID, err)
	}
	pendingKey := s.pendingKey(r.Target.UserID)
	return s.retry(ctx, "create request "+r.ID, func(tx *redis.Tx) error {
		if err := s.refuseDuplicate(ctx, tx, pendingKey); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			ttl := s.lifetime(r)
			p.Set(ctx, s.reqKey(r.ID), data, ttl)
			if r.State == request.StatePending {
				p.Set(ctx, pendingKey, r.ID, ttl)
			}
			s.index(ctx, p, r, r.State == request.StatePending)
			return nil
		})
		return err
	}, pendingKey)
}

// refuseDuplicate returns a *request.DuplicateError when the pending index
// names a request that still exists. An index entry whose request is gone
// (its key outlived by a moment) does not block a new request.
func (s *Store) refuseDuplicate(ctx context.Context, tx *redis.Tx, pendingKey string) error {
	id, err := tx.Get(ctx, pendingKey).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pending index: %w", err)
	}
	rec, err := s.read(ctx, tx, id)
	switch {
	case errors.Is(err, request.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	return final{&request.DuplicateError{Existing: rec.Request}}
}

// index queues the sorted-set entries for r. A pending request is listed as
// due only while it owns its target's pending index, which is what
// MemStore's DuePending scans.
func (s *Store) index(ctx context.Context, p redis.Pipeliner, r *request.Request, ownsPending bool) {
	if r.State == request.StatePending && ownsPending {
		p.ZAdd(ctx, s.dueKey(), redis.Z{Score: float64(r.ExpiresAt.UnixMilli()), Member: r.ID})
	} else {
		p.ZRem(ctx, s.dueKey(), r.ID)
	}
	if r.Unsettled() {
		p.ZAdd(ctx, s.executingKey(), redis.Z{Score: float64(r.UnsettledSince().UnixMilli()), Member: r.ID})
	} else {
		p.ZRem(ctx, s.executingKey(), r.ID)
	}
}

// Update implements request.Store. fn runs on a fresh copy of the stored
// request on each attempt; the write commits only if nobody wrote the
// request (or its target's pending index) since it was read.
func (s *Store) Update(ctx context.Context, id string, fn func(*request.Request) error) (*request.Request, error) {
	var result *request.Request
	err := s.retry(ctx, "update request "+id, func(tx *redis.Tx) error {
		var err error
		result, err = s.updateOnce(ctx, tx, id, fn)
		return err
	}, s.reqKey(id))
	return result, err
}

// updateOnce is one attempt of Update. It returns the stored request: the
// new one when it committed, the current one when fn failed.
func (s *Store) updateOnce(ctx context.Context, tx *redis.Tx, id string, fn func(*request.Request) error) (*request.Request, error) {
	rec, err := s.read(ctx, tx, id)
	if errors.Is(err, request.ErrNotFound) {
		return nil, final{err}
	}
	if err != nil {
		return nil, err
	}
	cur := rec.Request
	pendingKey := s.pendingKey(cur.Target.UserID)
	if err := tx.Watch(ctx, pendingKey).Err(); err != nil {
		return nil, fmt.Errorf("watch pending index: %w", err)
	}
	owner, err := tx.Get(ctx, pendingKey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read pending index: %w", err)
	}
	ownsPending := owner == id

	next := cur.Clone()
	if err := fn(next); err != nil {
		return cur, final{err}
	}
	data, err := json.Marshal(record{Version: rec.Version + 1, Request: next})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ttl := s.lifetime(next)
		p.Set(ctx, s.reqKey(id), data, ttl)
		switch {
		case ownsPending && next.State == request.StatePending:
			p.PExpire(ctx, pendingKey, ttl)
		case ownsPending:
			p.Del(ctx, pendingKey)
		}
		s.index(ctx, p, next, ownsPending)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// CountPending implements request.Store. It counts the due set, which
// holds the requests that own their target's pending index, as MemStore
// counts; an id whose key Redis expired is counted until the next
// DuePending drops it.
func (s *Store) CountPending(ctx context.Context) (int, error) {
	n, err := s.client.ZCard(ctx, s.dueKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: count pending: %w", err)
	}
	return int(n), nil
}

// DuePending implements request.Store.
func (s *Store) DuePending(ctx context.Context, now time.Time) ([]*request.Request, error) {
	// Scores are whole milliseconds; the exact comparison happens below.
	rs, err := s.listed(ctx, s.dueKey(), now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("redisstore: due pending: %w", err)
	}
	var due []*request.Request
	for _, r := range rs {
		if r.State == request.StatePending && !now.Before(r.ExpiresAt) {
			due = append(due, r)
		}
	}
	return due, nil
}

// Unsettled implements request.Store: resets that a replica started and,
// having died, never finished or never showed.
func (s *Store) Unsettled(ctx context.Context, olderThan time.Time) ([]*request.Request, error) {
	rs, err := s.listed(ctx, s.executingKey(), olderThan.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("redisstore: unsettled: %w", err)
	}
	var stuck []*request.Request
	for _, r := range rs {
		if r.Unsettled() && r.UnsettledSince().Before(olderThan) {
			stuck = append(stuck, r)
		}
	}
	return stuck, nil
}

// listed returns the requests in the sorted set key scored at most maxMs.
// Ids whose request key has expired are dropped from the set.
func (s *Store) listed(ctx context.Context, key string, maxMs int64) ([]*request.Request, error) {
	ids, err := s.client.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(maxMs)}).Result()
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", key, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.reqKey(id)
	}
	values, err := s.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("read listed requests: %w", err)
	}
	var rs []*request.Request
	var gone []any
	for i, v := range values {
		data, ok := v.(string)
		if !ok {
			gone = append(gone, ids[i])
			continue
		}
		rec, err := decode(ids[i], []byte(data))
		if err != nil {
			// One unreadable record (corrupt, or written by a version
			// that no longer decodes) must not stop every sweep; Get
			// still reports it for that request alone.
			continue
		}
		rs = append(rs, rec.Request)
	}
	if len(gone) > 0 {
		if err := s.client.ZRem(ctx, key, gone...).Err(); err != nil {
			return nil, fmt.Errorf("drop expired ids from %s: %w", key, err)
		}
	}
	return rs, nil
}

// FirstDelivery implements request.Store. The window is measured by Redis's
// clock, not Options.Now.
func (s *Store) FirstDelivery(ctx context.Context, envelopeID string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		// Nothing is remembered for no time, as in MemStore.
		return true, nil
	}
	// Redis counts in whole milliseconds; round up so a short ttl still
	// holds the envelope.
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	first, err := s.client.SetNX(ctx, s.envKey(envelopeID), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: record envelope %s: %w", envelopeID, err)
	}
	return first, nil
}
