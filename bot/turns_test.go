package bot

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func TestTurnsOneAtATimePerKey(t *testing.T) {
	q := newTurns()
	ctx := context.Background()
	var inAudit, most atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			done, err := q.wait(ctx, "CAUDIT")
			if err != nil {
				t.Error(err)
				return
			}
			n := inAudit.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			runtime.Gosched()
			inAudit.Add(-1)
			done()
		})
	}
	// Meanwhile another channel is not held up by the audit channel.
	doneOps, err := q.wait(ctx, "COPS")
	if err != nil {
		t.Fatal(err)
	}
	doneOps()
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("up to %d posts in flight to one channel, want 1", m)
	}
	if n := len(q.lines); n != 0 {
		t.Errorf("%d channels remembered after all posts ended, want 0", n)
	}
}

func TestTurnsWaitEndsWithContext(t *testing.T) {
	q := newTurns()
	done, err := q.wait(context.Background(), "C1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.wait(ctx, "C1"); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with an ended context = %v, want context.Canceled", err)
	}
	done()
	if n := len(q.lines); n != 0 {
		t.Errorf("%d channels remembered, want 0", n)
	}
}
