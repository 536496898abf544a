package cloudflare

import (
	"errors"
	"fmt"
	"testing"

	"risk-reset-bot/internal/cfapitest"
)

// lookupFixture holds users whose emails contain "alice@example.com" as a
// substring, so only an exact match may be picked, spread over pages of 2.
func lookupFixture(t *testing.T, users ...cfapitest.FakeUser) *fixture {
	t.Helper()
	f := newFixture(t, nil)
	f.fake.SetMaxPerPage(2)
	decoys := []string{"malice@example.com", "alice@example.com.evil.test", "xalice@example.com", "alice@example.community", "palice@example.com"}
	for i, email := range decoys {
		f.fake.AddUser(cfapitest.FakeUser{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Email: email, Name: "Decoy"})
	}
	for _, u := range users {
		f.fake.AddUser(u)
	}
	return f
}

func TestFindUserByEmailAcrossPagesIgnoringCase(t *testing.T) {
	// newFixture's Alice is replaced so the only exact match comes last,
	// on the third page, in different case.
	f := lookupFixture(t)
	f.fake.AddUser(cfapitest.FakeUser{ID: aliceID, Email: "placeholder@example.org"})
	f.fake.AddUser(cfapitest.FakeUser{ID: "11111111-2222-4333-8444-555555555555", Email: "Alice@Example.COM", Name: "Alice"})

	u, err := f.client.FindUserByEmail(testContext(t), "ALICE@example.com")
	if err != nil {
		t.Fatalf("FindUserByEmail: %v", err)
	}
	if u.ID != "11111111-2222-4333-8444-555555555555" || u.Name != "Alice" {
		t.Errorf("user %+v, want the exact match", u)
	}
	reqs := f.srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 pages of 2 for 6 substring matches", len(reqs))
	}
	for i, r := range reqs {
		if got := r.Query.Get("page"); got != fmt.Sprint(i+1) {
			t.Errorf("request %d asked page %q", i, got)
		}
		if got := r.Query.Get("email"); got != "ALICE@example.com" {
			t.Errorf("request %d asked email %q", i, got)
		}
		if got := r.Query.Get("per_page"); got != "50" {
			t.Errorf("request %d asked per_page %q", i, got)
		}
	}
}

func TestFindUserByEmailNoExactMatch(t *testing.T) {
	f := lookupFixture(t)
	f.fake.AddUser(cfapitest.FakeUser{ID: aliceID, Email: "someone@example.org"})

	_, err := f.client.FindUserByEmail(testContext(t), aliceEmail)
	if !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("error %v, want ErrUserNotFound", err)
	}
	if n := f.fake.Calls(cfapitest.OpListUsers); n != 3 {
		t.Errorf("%d pages read, want 3 (5 decoys, pages of 2)", n)
	}
}

func TestFindUserByEmailNoMatchAtAll(t *testing.T) {
	f := newFixture(t, nil)
	_, err := f.client.FindUserByEmail(testContext(t), "nobody@example.net")
	if !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("error %v, want ErrUserNotFound", err)
	}
}

func TestFindUserByEmailOneMatch(t *testing.T) {
	f := lookupFixture(t)
	u, err := f.client.FindUserByEmail(testContext(t), aliceEmail)
	if err != nil {
		t.Fatalf("FindUserByEmail: %v", err)
	}
	if u.ID != aliceID || u.Email != aliceEmail || u.Name != "Alice" {
		t.Errorf("user %+v", u)
	}
}

func TestFindUserByEmailAmbiguous(t *testing.T) {
	f := lookupFixture(t, cfapitest.FakeUser{ID: "11111111-2222-4333-8444-555555555555", Email: "ALICE@EXAMPLE.COM", Name: "Other Alice"})

	_, err := f.client.FindUserByEmail(testContext(t), aliceEmail)

	amb := wantAs[*AmbiguousUserError](t, err)
	if amb.Matches != 2 || amb.Email != aliceEmail {
		t.Errorf("AmbiguousUserError %+v, want 2 matches for %s", amb, aliceEmail)
	}
}

func TestFindUserByEmailRejectsNonEmails(t *testing.T) {
	f := newFixture(t, nil)
	for _, email := range []string{"", "alice", "Alice <alice@example.com>", "a b@example.com", "alice@example.com\r\nX: y"} {
		if _, err := f.client.FindUserByEmail(testContext(t), email); !errors.Is(err, ErrInvalidEmail) {
			t.Errorf("FindUserByEmail(%q): error %v, want ErrInvalidEmail", email, err)
		}
	}
	if n := f.srv.RequestCount(); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

func TestFindUserByEmailKeepsQueryIntact(t *testing.T) {
	f := newFixture(t, nil)
	email := "alice+x@example.com&per_page=1000"
	if _, err := f.client.FindUserByEmail(testContext(t), email); !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("error %v, want ErrUserNotFound", err)
	}
	q := f.srv.Requests()[0].Query
	if got := q["email"]; len(got) != 1 || got[0] != email {
		t.Errorf("email sent as %q, want exactly %q", got, email)
	}
	if got := q["per_page"]; len(got) != 1 || got[0] != "50" {
		t.Errorf("per_page sent as %q, want only 50", got)
	}
}

// TestFindUserByEmailAtThePageCap: when the search matches more users than
// the client reads, the lookup says it is incomplete instead of answering
// from the pages it read.
func TestFindUserByEmailAtThePageCap(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.SetMaxPerPage(1)
	f.fake.AddUser(cfapitest.FakeUser{ID: aliceID, Email: "placeholder@example.org"})
	for i := range maxUserPages {
		f.fake.AddUser(cfapitest.FakeUser{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Email: fmt.Sprintf("x%dalice@example.com", i)})
	}
	f.fake.AddUser(cfapitest.FakeUser{ID: "11111111-2222-4333-8444-555555555555", Email: aliceEmail})

	_, err := f.client.FindUserByEmail(testContext(t), aliceEmail)

	if !errors.Is(err, ErrLookupIncomplete) {
		t.Fatalf("error %v, want ErrLookupIncomplete", err)
	}
	if n := f.fake.Calls(cfapitest.OpListUsers); n != maxUserPages {
		t.Errorf("%d pages read, want %d", n, maxUserPages)
	}
}

// TestFindUserByEmailWithPartialResultInfo: servers that leave out
// result_info, or its total_count, still have every full page followed.
func TestFindUserByEmailWithPartialResultInfo(t *testing.T) {
	tests := []struct {
		name      string
		perPage   int
		rewrite   func(cfapitest.ResultInfo) any
		wantPages int
	}{
		{name: "no total_count", perPage: 2, wantPages: 4, rewrite: func(ri cfapitest.ResultInfo) any {
			return map[string]int{"page": ri.Page, "per_page": ri.PerPage, "count": ri.Count}
		}},
		{name: "no result_info, full pages", perPage: 0, wantPages: 2, rewrite: func(cfapitest.ResultInfo) any { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			if tt.perPage > 0 {
				f.fake.SetMaxPerPage(tt.perPage)
			}
			f.fake.SetUserPageInfo(tt.rewrite)
			// Alice comes after 5 decoys with pages of 2, or after 50 with
			// pages of 50: on a page after a full one either way.
			f.fake.AddUser(cfapitest.FakeUser{ID: aliceID, Email: "placeholder@example.org"})
			decoys := 5
			if tt.perPage == 0 {
				decoys = usersPerPage
			}
			for i := range decoys {
				f.fake.AddUser(cfapitest.FakeUser{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Email: fmt.Sprintf("x%dalice@example.com", i)})
			}
			f.fake.AddUser(cfapitest.FakeUser{ID: "11111111-2222-4333-8444-555555555555", Email: aliceEmail})

			u, err := f.client.FindUserByEmail(testContext(t), aliceEmail)

			if err != nil || u.ID != "11111111-2222-4333-8444-555555555555" {
				t.Fatalf("FindUserByEmail = %+v, %v; want the exact match on a later page", u, err)
			}
			if n := f.fake.Calls(cfapitest.OpListUsers); n != tt.wantPages {
				t.Errorf("%d pages read, want %d (a short or empty page ends the walk)", n, tt.wantPages)
			}
		})
	}
}
