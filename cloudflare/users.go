package cloudflare

import (
	"context"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
)

// usersPerPage is the page size asked for; the server may answer with
// smaller pages, which result_info reports.
const usersPerPage = 50

// maxUserPages stops a walk through pages that never ends, e.g. a server
// that keeps reporting a larger total than it returns. Reaching it with
// pages left is an error: the pages not read could hold a match.
const maxUserPages = 200

// User is a Zero Trust user.
type User struct {
	ID, Email, Name string
}

type accessUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

// FindUserByEmail returns the one Zero Trust user whose email equals email,
// ignoring case (needs Access: Audit Logs Read). The server's email filter
// may match substrings, so every page is read and filtered exactly. No match
// gives ErrUserNotFound, several give *AmbiguousUserError, and more matching
// pages than the client reads ErrLookupIncomplete.
func (c *Client) FindUserByEmail(ctx context.Context, email string) (*User, error) {
	email = strings.TrimSpace(email)
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
		return nil, fmt.Errorf("%w: %q", ErrInvalidEmail, truncate(email, 254))
	}
	matches := map[string]User{}
	var order []string
	for page := 1; ; page++ {
		users, info, err := c.listUsers(ctx, email, page)
		if err != nil {
			return nil, fmt.Errorf("looking up the user with email %q: %w", email, err)
		}
		for _, u := range users {
			if !strings.EqualFold(u.Email, email) {
				continue
			}
			if _, seen := matches[u.ID]; !seen {
				order = append(order, u.ID)
			}
			matches[u.ID] = User(u)
		}
		if lastPage(page, len(users), info) {
			break
		}
		if page == maxUserPages {
			return nil, fmt.Errorf("%w: %q: stopped after %d pages with more to read", ErrLookupIncomplete, email, page)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("%w: %q", ErrUserNotFound, email)
	case 1:
		u := matches[order[0]]
		return &u, nil
	default:
		return nil, &AmbiguousUserError{Email: email, Matches: len(matches)}
	}
}

// lastPage reports whether page was the last one: it was empty or short
// (fewer users than result_info's per_page, or than asked for without
// one), or result_info's total_count is covered. A full page without a
// total_count is followed: absent fields decode as 0, which says nothing.
func lastPage(page, got int, info *resultInfo) bool {
	perPage := float64(usersPerPage)
	if info != nil && info.PerPage > 0 {
		perPage = info.PerPage
	}
	switch {
	case float64(got) < perPage:
		return true
	case info != nil && info.TotalCount > 0:
		return float64(page)*perPage >= info.TotalCount
	}
	return false
}

func (c *Client) listUsers(ctx context.Context, email string, page int) ([]accessUser, *resultInfo, error) {
	query := url.Values{
		"email":    {email},
		"page":     {strconv.Itoa(page)},
		"per_page": {strconv.Itoa(usersPerPage)},
	}
	req := request{
		method:     http.MethodGet,
		url:        c.endpoint(query, "accounts", c.accountID, "access", "users"),
		permission: PermAuditLogsRead,
	}
	res, err := c.do(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	var users []accessUser
	if err := decodeResult(req, res, &users); err != nil {
		return nil, nil, err
	}
	return users, res.env.ResultInfo, nil
}
