package cloudflare

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"risk-reset-bot/internal/cfapitest"
)

var (
	opVerifyAccount = "GET " + cfapitest.OpVerifyAccountToken
	opVerifyUser    = "GET " + cfapitest.OpVerifyUserToken
)

func TestVerifyAccountToken(t *testing.T) {
	f := newFixture(t, nil)
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.fake.SetToken(cfapitest.FakeToken{Value: testToken, ID: "0123456789abcdef0123456789abcdef", Status: "active", ExpiresOn: &expires, Owner: cfapitest.AccountToken})

	st, err := f.client.VerifyToken(testContext(t))
	if err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	if st.Scope != ScopeAccount || st.ID != "0123456789abcdef0123456789abcdef" || !st.Active() {
		t.Errorf("status %+v, want the active account token", st)
	}
	if st.ExpiresOn == nil || !st.ExpiresOn.Equal(expires) {
		t.Errorf("ExpiresOn %v, want %v", st.ExpiresOn, expires)
	}
	if got := operations(f.srv.Requests()); !slices.Equal(got, []string{opVerifyAccount}) {
		t.Errorf("requests %v, want only the account endpoint", got)
	}
}

func TestVerifyUserTokenFallsBack(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*cfapitest.FakeAccount)
	}{
		{"account endpoint refuses a user token", func(a *cfapitest.FakeAccount) {}},
		{"account endpoint missing", func(a *cfapitest.FakeAccount) {
			a.Inject(cfapitest.OpVerifyAccountToken, cfapitest.Fault{Status: http.StatusNotFound})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.fake.SetToken(cfapitest.FakeToken{Value: testToken, ID: "ed17574386854bf78a67040be0a770b0", Status: "disabled", Owner: cfapitest.UserToken})
			tt.setup(f.fake)

			st, err := f.client.VerifyToken(testContext(t))
			if err != nil {
				t.Fatalf("VerifyToken: %v", err)
			}
			if st.Scope != ScopeUser || st.Status != "disabled" || st.Active() {
				t.Errorf("status %+v, want the disabled user token", st)
			}
			if got := operations(f.srv.Requests()); !slices.Equal(got, []string{opVerifyAccount, opVerifyUser}) {
				t.Errorf("requests %v, want account then user endpoint", got)
			}
		})
	}
}

func TestVerifyUnknownToken(t *testing.T) {
	f := newFixture(t, TokenAuth("cfut_SECRETsomeOtherToken"))

	_, err := f.client.VerifyToken(testContext(t))

	apiErr := wantAs[*APIError](t, err)
	if apiErr.StatusCode != http.StatusUnauthorized || apiErr.Path != "/client/v4/user/tokens/verify" {
		t.Errorf("APIError %+v, want the user endpoint's 401", apiErr)
	}
	if f.fake.Calls(cfapitest.OpVerifyAccountToken) != 1 || f.fake.Calls(cfapitest.OpVerifyUserToken) != 1 {
		t.Errorf("want one call to each endpoint")
	}
}

func TestVerifyDoesNotFallBackOnServerError(t *testing.T) {
	f := newFixture(t, nil, WithBackoff(time.Hour, time.Hour))
	f.fake.Inject(cfapitest.OpVerifyAccountToken, cfapitest.Fault{Status: http.StatusServiceUnavailable})

	_, err := f.client.VerifyToken(testContext(t))

	if apiErr := wantAs[*APIError](t, err); apiErr.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", apiErr.StatusCode)
	}
	if n := f.fake.Calls(cfapitest.OpVerifyUserToken); n != 0 {
		t.Errorf("user endpoint called %d times after a server error", n)
	}
}

func TestVerifyTokenWithKeyAuth(t *testing.T) {
	f := newFixture(t, KeyAuth(testAPIEmail, testAPIKey))
	if _, err := f.client.VerifyToken(testContext(t)); !errors.Is(err, ErrTokenVerifyUnsupported) {
		t.Fatalf("error %v, want ErrTokenVerifyUnsupported", err)
	}
	if n := f.srv.RequestCount(); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}
