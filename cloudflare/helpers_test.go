package cloudflare

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"risk-reset-bot/internal/cfapitest"
)

const (
	testAccount  = "023e105f4ecef8ad9ca31a8372d0c353"
	testToken    = "cfut_SECRETtoken0123456789abcdef"
	testAPIEmail = "soc-bot@example.com"
	testAPIKey   = "SECRETglobalkey0123456789abcdef"
	aliceID      = "f2108713-1206-4e84-8b80-0e71a6a1c67b"
	aliceEmail   = "alice@example.com"
)

// fixture is one fake account behind its own validating server, and a
// client pointed at it.
type fixture struct {
	fake   *cfapitest.FakeAccount
	srv    *cfapitest.Server
	client *Client
}

func newFixture(t *testing.T, auth Auth, opts ...Option) *fixture {
	t.Helper()
	fake := cfapitest.NewFakeAccount(testAccount)
	fake.SetToken(cfapitest.FakeToken{Value: testToken, ID: "ed17574386854bf78a67040be0a770b0", Status: "active", Owner: cfapitest.AccountToken})
	fake.SetAPIKey(testAPIEmail, testAPIKey)
	fake.AddUser(cfapitest.FakeUser{
		ID: aliceID, Email: aliceEmail, Name: "Alice", RiskLevel: "high",
		Events: []cfapitest.FakeEvent{{ID: "ev1", Name: "Impossible travel", RiskLevel: "high", Timestamp: time.Now().Add(-time.Hour)}},
	})
	srv := cfapitest.NewServer(t, fake)
	return &fixture{fake: fake, srv: srv, client: newTestClient(t, srv, auth, opts...)}
}

// testSettleWindow keeps unanswered resets from being watched for long.
const testSettleWindow = 200 * time.Millisecond

// newTestClient points a client at srv with millisecond backoff and a short
// settle window.
func newTestClient(t *testing.T, srv *cfapitest.Server, auth Auth, opts ...Option) *Client {
	t.Helper()
	if auth == nil {
		auth = TokenAuth(testToken)
	}
	all := append([]Option{
		WithBaseURL(srv.URL),
		WithHTTPClient(srv.Client()),
		WithBackoff(time.Millisecond, 4*time.Millisecond),
		WithRetryBudget(2 * time.Second),
		WithSettleWindow(testSettleWindow),
	}, opts...)
	c, err := NewClient(testAccount, auth, all...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// testContext bounds a test so a broken retry loop fails instead of hanging.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantAs[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not a %T", err, err, target)
	}
	return target
}

func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, secret := range []string{testToken, testAPIKey} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error message leaks a credential: %q", err.Error())
		}
	}
}

func operations(reqs []cfapitest.RecordedRequest) []string {
	var ops []string
	for _, r := range reqs {
		ops = append(ops, r.Method+" "+r.Operation)
	}
	return ops
}

// htmlPage is what Cloudflare's edge serves instead of JSON on some errors.
const htmlPage = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"

var htmlHeader = http.Header{"Content-Type": {"text/html; charset=UTF-8"}}
