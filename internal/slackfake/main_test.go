package slackfake

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if the fake (or a slack-go client a test
// started) leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
