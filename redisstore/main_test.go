package redisstore_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind, such as
// a client a Store did not close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
