package main

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

// benchTB lets the test fakes run outside `go test`. They take a
// testing.TB only to register their cleanups and, for the Slack fake, to
// mark helpers; those methods are implemented here. Any other method would
// reach the nil embedded TB and panic, which the fakes do not call.
type benchTB struct {
	testing.TB

	mu       sync.Mutex
	cleanups []func()
}

func (*benchTB) Helper() {}

func (*benchTB) Name() string { return "risk-reset-bench" }

func (t *benchTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (*benchTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func (*benchTB) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fake reported: "+format+"\n", args...)
}

// Fatalf stops the bench: a fake that cannot go on leaves nothing to
// measure.
func (*benchTB) Fatalf(format string, args ...any) {
	panic("fake failed: " + fmt.Sprintf(format, args...))
}

// close runs the cleanups, newest first, as testing does.
func (t *benchTB) close() {
	t.mu.Lock()
	fs := slices.Clone(t.cleanups)
	t.cleanups = nil
	t.mu.Unlock()
	for _, f := range slices.Backward(fs) {
		f()
	}
}
