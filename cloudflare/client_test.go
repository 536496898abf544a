package cloudflare

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"risk-reset-bot/internal/cfapitest"
)

func TestAuthHeaders(t *testing.T) {
	tests := []struct {
		name    string
		auth    Auth
		want    map[string]string
		absents []string
	}{
		{"token", TokenAuth(testToken), map[string]string{"Authorization": "Bearer " + testToken}, []string{"X-Auth-Email", "X-Auth-Key"}},
		{"key", KeyAuth(testAPIEmail, testAPIKey), map[string]string{"X-Auth-Email": testAPIEmail, "X-Auth-Key": testAPIKey}, []string{"Authorization"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.auth)
			if _, err := f.client.ResetRiskScore(testContext(t), aliceID); err != nil {
				t.Fatalf("ResetRiskScore: %v", err)
			}
			if _, err := f.client.FindUserByEmail(testContext(t), aliceEmail); err != nil {
				t.Fatalf("FindUserByEmail: %v", err)
			}
			reqs := f.srv.Requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3", len(reqs))
			}
			for _, r := range reqs {
				for k, v := range tt.want {
					if got := r.Header.Values(k); len(got) != 1 || got[0] != v {
						t.Errorf("%s %s: header %s = %q, want exactly %q", r.Method, r.Path, k, got, v)
					}
				}
				for _, k := range append(tt.absents, "X-Auth-User-Service-Key") {
					if _, ok := r.Header[k]; ok {
						t.Errorf("%s %s: header %s sent with %s auth", r.Method, r.Path, k, tt.name)
					}
				}
				if got := r.Header.Get("Accept"); got != "application/json" {
					t.Errorf("Accept %q", got)
				}
			}
		})
	}
}

func TestUserAgent(t *testing.T) {
	for _, tt := range []struct {
		opts []Option
		want string
	}{
		{nil, "risk-reset-bot/dev"},
		{[]Option{WithUserAgent("risk-reset-bot/1.2.3")}, "risk-reset-bot/1.2.3"},
	} {
		f := newFixture(t, nil, tt.opts...)
		f.fake.Inject(cfapitest.OpGetUserRisk, cfapitest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "0"})
		if _, err := f.client.ResetRiskScore(testContext(t), aliceID); err != nil {
			t.Fatalf("ResetRiskScore: %v", err)
		}
		if _, err := f.client.VerifyToken(testContext(t)); err != nil {
			t.Fatalf("VerifyToken: %v", err)
		}
		reqs := f.srv.Requests()
		if len(reqs) != 4 {
			t.Fatalf("%d requests, want reset, 429'd read, read, verify", len(reqs))
		}
		for _, r := range reqs {
			if got := r.Header.Get("User-Agent"); got != tt.want {
				t.Errorf("%s %s: User-Agent %q, want %q", r.Method, r.Path, got, tt.want)
			}
		}
	}
}

func TestBaseURLWithTrailingSlash(t *testing.T) {
	f := newFixture(t, nil)
	c := newTestClient(t, f.srv, nil, WithBaseURL(f.srv.URL+"/"))
	if _, err := c.GetUserRisk(testContext(t), aliceID); err != nil {
		t.Fatalf("GetUserRisk: %v", err)
	}
	if got := f.srv.Requests()[0].Path; got != "/client/v4/accounts/"+testAccount+"/zt_risk_scoring/"+aliceID {
		t.Errorf("path %q", got)
	}
}

func TestNewClientValidates(t *testing.T) {
	tests := []struct {
		name    string
		account string
		auth    Auth
		opts    []Option
	}{
		{"short account", "023e105f4ecef8ad9ca31a8372d0c35", TokenAuth("t"), nil},
		{"non-hex account", "023e105f4ecef8ad9ca31a8372d0c35z", TokenAuth("t"), nil},
		{"account with path", "../023e105f4ecef8ad9ca31a8372d0c3", TokenAuth("t"), nil},
		{"no auth", testAccount, nil, nil},
		{"empty token", testAccount, TokenAuth(""), nil},
		{"key without email", testAccount, KeyAuth("", "k"), nil},
		{"relative base", testAccount, TokenAuth("t"), []Option{WithBaseURL("/client/v4")}},
		{"base with query", testAccount, TokenAuth("t"), []Option{WithBaseURL("https://api.cloudflare.com/client/v4?x=1")}},
		{"ftp base", testAccount, TokenAuth("t"), []Option{WithBaseURL("ftp://api.cloudflare.com/client/v4")}},
		{"bad backoff", testAccount, TokenAuth("t"), []Option{WithBackoff(0, 0)}},
		{"nil http client", testAccount, TokenAuth("t"), []Option{WithHTTPClient(nil)}},
	}
	for _, tt := range tests {
		if _, err := NewClient(tt.account, tt.auth, tt.opts...); err == nil {
			t.Errorf("%s: NewClient accepted it", tt.name)
		}
	}
	if _, err := NewClient(strings.ToUpper(testAccount), TokenAuth("t")); err != nil {
		t.Errorf("NewClient refused an upper-case account id: %v", err)
	}
}

// TestUnsentResetIsRetried fails the first dial: the POST never left, so
// sending it again is safe.
func TestUnsentResetIsRetried(t *testing.T) {
	f := newFixture(t, nil)
	var dials atomic.Int32
	transport := f.srv.Client().Transport.(*http.Transport).Clone()
	dialer := &net.Dialer{}
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
		}
		return dialer.DialContext(ctx, network, addr)
	}
	c := newTestClient(t, f.srv, nil, WithHTTPClient(&http.Client{Transport: transport}))

	res, err := c.ResetRiskScore(testContext(t), aliceID)
	if err != nil {
		t.Fatalf("ResetRiskScore: %v", err)
	}
	if !res.Verified || res.Ambiguous {
		t.Errorf("result %+v, want verified and not ambiguous", res)
	}
	if n := f.fake.Calls(cfapitest.OpResetRisk); n != 1 {
		t.Errorf("reset reached the server %d times, want 1", n)
	}
	if dials.Load() < 2 {
		t.Errorf("%d dials, want a retry after the failed one", dials.Load())
	}
}
