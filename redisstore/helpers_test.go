package redisstore_test

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"risk-reset-bot/redisstore"
	"risk-reset-bot/request/storetest"
)

// Short names for the fixtures most used here.
var t0 = storetest.T0

const (
	ttl       = storetest.TTL
	retention = time.Hour
)

func fixedClock() time.Time { return t0 }

// redisURL returns the Redis the tests may use, skipping the test when
// there is none, except in CI, where a missing Redis would silently leave
// the store untested.
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u != "" {
		return u
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("REDIS_URL is not set: CI must provide Redis; .ci/run starts it")
	}
	t.Skip("REDIS_URL is not set; start Redis with `. .ci/redis.sh` to run the Redis store tests")
	return ""
}

// newClient returns a client of the test Redis, closed when the test ends.
func newClient(t *testing.T) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newPrefix returns a namespace of the test's own, whose keys are deleted
// when the test ends.
func newPrefix(t *testing.T) string {
	t.Helper()
	prefix := "risk-reset-bot-test:" + rand.Text() + ":"
	admin := newClient(t)
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := admin.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("list test keys: %v", err)
			return
		}
		if len(keys) > 0 {
			if err := admin.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("delete test keys: %v", err)
			}
		}
	})
	return prefix
}

// newStore returns a store with its own client under prefix, closed when
// the test ends.
func newStore(t *testing.T, prefix string, now func() time.Time, hooks ...redis.Hook) *redisstore.Store {
	t.Helper()
	o, err := redis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	// Enough connections for every racing goroutine to hold one at a gate.
	o.PoolSize = 64
	client := redis.NewClient(o)
	for _, h := range hooks {
		client.AddHook(h)
	}
	s := redisstore.New(client, redisstore.Options{Prefix: prefix, Retention: retention, Now: now})
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return addr
}

// gate is a client hook that holds the first n transactions at MULTI/EXEC
// until all n have arrived, so all of them have read the same version
// before any can write: a store that does not compare and set then lets
// every one of them through.
type gate struct {
	n       int32
	arrived atomic.Int32
	open    chan struct{}
	ctx     context.Context
}

func newGate(t *testing.T, n int) *gate {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	g := &gate{n: int32(n), open: make(chan struct{}), ctx: ctx}
	t.Cleanup(func() {
		if ctx.Err() != nil {
			t.Errorf("only %d of %d transactions reached the gate within 10s", g.arrived.Load(), n)
		}
		cancel()
	})
	return g
}

func (g *gate) wait() {
	switch k := g.arrived.Add(1); {
	case k == g.n:
		close(g.open)
	case k > g.n:
		return
	}
	select {
	case <-g.open:
	case <-g.ctx.Done():
	}
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			g.wait()
		}
		return next(ctx, cmds)
	}
}
