// Package cloudflare is a small client for the Cloudflare v4 API calls the
// bot needs: reset and read a user's Zero Trust risk score, find a user by
// email, and verify the API token.
//
// Every call checks both the HTTP status and the envelope's success flag,
// returns typed errors a caller can branch on (*APIError, *PermissionError,
// *RateLimitError, *BodyError), retries only what is safe within a bounded
// time, and never puts credentials into an error.
package cloudflare

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
)

// DefaultBaseURL is Cloudflare's v4 API.
const DefaultBaseURL = "https://api.cloudflare.com/client/v4"

// Defaults for the options.
const (
	DefaultUserAgent    = "risk-reset-bot/dev"
	DefaultRetryBudget  = 30 * time.Second
	DefaultBackoffBase  = 500 * time.Millisecond
	DefaultBackoffMax   = 8 * time.Second
	DefaultSettleWindow = 10 * time.Second
)

// maxBodySize bounds how much of a response body is read.
const maxBodySize = 1 << 20

// Auth is a way to authenticate to Cloudflare: TokenAuth or KeyAuth.
type Auth interface {
	apply(h http.Header)
	isToken() bool
	validate() error
}

// TokenAuth authenticates with an API token (Authorization: Bearer).
func TokenAuth(token string) Auth { return tokenAuth{token: token} }

// KeyAuth authenticates with the legacy account email and global API key.
func KeyAuth(email, key string) Auth { return keyAuth{email: email, key: key} }

type tokenAuth struct{ token string }

func (a tokenAuth) apply(h http.Header) { h.Set("Authorization", "Bearer "+a.token) }
func (a tokenAuth) isToken() bool       { return true }

func (a tokenAuth) validate() error {
	if a.token == "" {
		return errors.New("cloudflare: empty API token")
	}
	return headerSafe("API token", a.token)
}

// String keeps the token out of logs that print an Auth.
func (a tokenAuth) String() string   { return "cloudflare.TokenAuth(redacted)" }
func (a tokenAuth) GoString() string { return a.String() }

type keyAuth struct{ email, key string }

func (a keyAuth) apply(h http.Header) {
	h.Set("X-Auth-Email", a.email)
	h.Set("X-Auth-Key", a.key)
}
func (a keyAuth) isToken() bool { return false }

func (a keyAuth) validate() error {
	if a.email == "" || a.key == "" {
		return errors.New("cloudflare: legacy authentication needs both an email and an API key")
	}
	if err := headerSafe("API email", a.email); err != nil {
		return err
	}
	return headerSafe("API key", a.key)
}

// String keeps the key out of logs that print an Auth.
func (a keyAuth) String() string   { return "cloudflare.KeyAuth(redacted)" }
func (a keyAuth) GoString() string { return a.String() }

// headerSafe rejects credentials that cannot travel in a header; the error
// names the credential, never its value.
func headerSafe(what, v string) error {
	for _, r := range v {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII {
			return fmt.Errorf("cloudflare: the %s contains whitespace or non-ASCII characters", what)
		}
	}
	return nil
}

// Client calls the Cloudflare API for one account. It is safe for
// concurrent use.
type Client struct {
	httpClient   *http.Client
	baseURL      *url.URL
	rawBaseURL   string
	accountID    string
	auth         Auth
	userAgent    string
	retryBudget  time.Duration
	backoffBase  time.Duration
	backoffMax   time.Duration
	settleWindow time.Duration

	// traced records that the transport reports trace events, so that a
	// request it reported nothing about surely never left (see send).
	traced atomic.Bool

	// onWait, when set, is called before each wait between attempts; tests
	// use it to act while the client is backing off.
	onWait func(time.Duration)
}

// Option configures a Client.
type Option func(*Client)

// WithBaseURL sets the API base URL, path included (default
// https://api.cloudflare.com/client/v4).
func WithBaseURL(u string) Option { return func(c *Client) { c.rawBaseURL = u } }

// WithHTTPClient sets the HTTP client; its Timeout bounds each attempt.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.httpClient = h } }

// WithUserAgent sets the User-Agent, e.g. "risk-reset-bot/1.2.3".
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithRetryBudget bounds the total time of one call: no attempt runs past
// it, and a retry is made only when a tenth of it is left after the wait.
// (A reset may spend up to the settle window more reading its outcome.)
func WithRetryBudget(d time.Duration) Option { return func(c *Client) { c.retryBudget = d } }

// WithBackoff sets the bounds of the jittered exponential backoff used when
// Cloudflare gives no Retry-After.
func WithBackoff(base, max time.Duration) Option {
	return func(c *Client) { c.backoffBase, c.backoffMax = base, max }
}

// WithSettleWindow bounds how long a reset whose answer never came (a
// timeout, a dropped connection, a 504) is watched for the moment it takes
// effect, and how long the reads that settle an unclear reset may run past
// the retry budget or the caller's context.
func WithSettleWindow(d time.Duration) Option { return func(c *Client) { c.settleWindow = d } }

// NewClient returns a client for the account (32 hexadecimal characters).
func NewClient(accountID string, auth Auth, opts ...Option) (*Client, error) {
	c := &Client{
		httpClient:   &http.Client{Timeout: 30 * time.Second},
		rawBaseURL:   DefaultBaseURL,
		accountID:    strings.ToLower(accountID),
		auth:         auth,
		userAgent:    DefaultUserAgent,
		retryBudget:  DefaultRetryBudget,
		backoffBase:  DefaultBackoffBase,
		backoffMax:   DefaultBackoffMax,
		settleWindow: DefaultSettleWindow,
	}
	for _, opt := range opts {
		opt(c)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	base, err := parseBaseURL(c.rawBaseURL)
	if err != nil {
		return nil, err
	}
	c.baseURL = base
	return c, nil
}

func (c *Client) validate() error {
	if b, err := hex.DecodeString(c.accountID); err != nil || len(b) != 16 {
		return fmt.Errorf("cloudflare: account id %q is not 32 hexadecimal characters", truncate(c.accountID, 40))
	}
	if c.auth == nil {
		return errors.New("cloudflare: no credentials: use TokenAuth or KeyAuth")
	}
	if err := c.auth.validate(); err != nil {
		return err
	}
	switch {
	case c.httpClient == nil:
		return errors.New("cloudflare: nil HTTP client")
	case c.userAgent == "":
		return errors.New("cloudflare: empty User-Agent")
	case c.retryBudget <= 0:
		return errors.New("cloudflare: the retry budget must be positive")
	case c.settleWindow <= 0:
		return errors.New("cloudflare: the settle window must be positive")
	case c.backoffBase <= 0 || c.backoffMax < c.backoffBase:
		return errors.New("cloudflare: backoff needs 0 < base <= max")
	}
	return nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("cloudflare: base URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("cloudflare: base URL %q is not an absolute http(s) URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("cloudflare: base URL %q must not carry a query, fragment or user info", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	return u, nil
}

// endpoint builds {base}/{segments...}?query. Each segment is escaped on
// its own, so no input can add a path segment or a query.
func (c *Client) endpoint(query url.Values, segments ...string) *url.URL {
	u := *c.baseURL
	var path, raw strings.Builder
	path.WriteString(c.baseURL.Path)
	raw.WriteString(c.baseURL.EscapedPath())
	for _, s := range segments {
		path.WriteString("/" + s)
		raw.WriteString("/" + url.PathEscape(s))
	}
	u.Path, u.RawPath = path.String(), raw.String()
	u.RawQuery = query.Encode()
	return &u
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
