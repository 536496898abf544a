package cloudflare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Cloudflare error codes the client branches on.
const (
	codeAuthentication = 10000 // "Authentication error": usually a missing permission
	codeUnauthorized   = 9109  // "Unauthorized to access requested resource"
)

// request describes one API call.
type request struct {
	method string
	url    *url.URL
	// permission is what a 403 authentication error means is missing;
	// "" when a 403 is just an *APIError.
	permission string
	// unsafe marks a call that must not be re-sent once Cloudflare may have
	// received it (the reset POST).
	unsafe bool
	// deadline bounds the attempts and the waits between them when the
	// caller retries too (zero: the client's retry budget from now).
	deadline time.Time
}

// envelope is Cloudflare's response wrapper.
type envelope struct {
	Success    *bool           `json:"success"`
	Errors     []ErrorDetail   `json:"errors"`
	Messages   []ErrorDetail   `json:"messages"`
	Result     json.RawMessage `json:"result"`
	ResultInfo *resultInfo     `json:"result_info"`
}

type resultInfo struct {
	Page       float64 `json:"page"`
	PerPage    float64 `json:"per_page"`
	Count      float64 `json:"count"`
	TotalCount float64 `json:"total_count"`
}

// response is a successful answer.
type response struct {
	status int
	env    envelope
	cfRay  string
}

// attempt is the result of sending a request once.
type attempt struct {
	res        *response
	err        error
	status     int // 0 when no response arrived
	retryAfter time.Duration
	hasRetry   bool
	// maybeSent is true when Cloudflare may have received the request.
	maybeSent bool
}

// statusOriginTimeout is Cloudflare's 524 "A timeout occurred": its edge
// stopped waiting for the origin, which may still finish the request.
const statusOriginTimeout = 524

// ambiguousError marks a failure of an unsafe request after which Cloudflare
// may or may not have acted.
type ambiguousError struct {
	err error
	// retryable: re-sending is allowed once reading shows the attempt
	// not applied (502, 503, 504, a dropped connection).
	retryable bool
	// inFlight: nothing says Cloudflare has finished with the request (a
	// timeout or dropped connection once it was sent, or a 504 or
	// Cloudflare's own 524 from a gateway that gave up while the origin
	// may still be working), so it
	// may take effect later. Otherwise it was answered (500, 502, 503, an
	// unreadable 2xx), and a read from now on shows its effect.
	inFlight bool
	// retryAfter is the answer's Retry-After, 0 when none, counted from
	// failedAt.
	retryAfter time.Duration
	failedAt   time.Time
}

func newAmbiguousError(ctx context.Context, at attempt) *ambiguousError {
	return &ambiguousError{
		err:        at.err,
		retryable:  retryable(at) && ctx.Err() == nil,
		inFlight:   at.status == 0 || at.status == http.StatusGatewayTimeout || at.status == statusOriginTimeout,
		retryAfter: at.retryAfter,
		failedAt:   time.Now(),
	}
}

func (e *ambiguousError) Error() string { return e.err.Error() }
func (e *ambiguousError) Unwrap() error { return e.err }

// do sends the request, retrying 429, 502, 503, 504 and connection errors
// within the retry budget. For unsafe requests, a failure after which
// Cloudflare may have acted is returned as *ambiguousError, not retried
// here: the caller reads the outcome back first (see ResetRiskScore).
func (c *Client) do(ctx context.Context, req request) (*response, error) {
	deadline := req.deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(c.retryBudget)
	}
	// The deadline bounds each attempt too: the HTTP client's own timeout
	// could otherwise carry the last one far past it.
	attemptCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var prev attempt
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("cloudflare: %s %s: %w", req.method, req.url.Path, err)
		}
		at := c.send(attemptCtx, req)
		if at.err == nil {
			return at.res, nil
		}
		if req.unsafe && isAmbiguous(at) {
			return nil, newAmbiguousError(ctx, at)
		}
		if n > 0 && attemptCtx.Err() != nil && ctx.Err() == nil {
			// The budget ran out during this attempt; the answer before
			// it says more (a 429 becomes a *RateLimitError).
			return nil, finalError(prev)
		}
		prev = at
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(at.err, ctxErr) {
				return nil, at.err
			}
			return nil, fmt.Errorf("%w (then: %w)", at.err, ctxErr)
		}
		if !retryable(at) {
			return nil, at.err
		}
		// Retry-After is a minimum; the backoff keeps "Retry-After: 0"
		// from turning into a tight loop.
		wait := c.backoff(n)
		if at.hasRetry {
			wait = max(wait, at.retryAfter)
		}
		if !c.retryFits(wait, deadline) {
			return nil, finalError(at)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("cloudflare: %s %s: stopped waiting to retry (%v): %w", req.method, req.url.Path, at.err, err)
		}
	}
}

// retryFits reports whether a retry after wait leaves time for its attempt
// before deadline: a tenth of the budget at least. An attempt the deadline
// cuts short after sending a reset leaves its outcome unknown, so a retry
// with next to no time left costs more than it can win.
func (c *Client) retryFits(wait time.Duration, deadline time.Time) bool {
	return !time.Now().Add(wait + c.retryBudget/10).After(deadline)
}

// isAmbiguous reports whether Cloudflare may have acted on a request that
// failed: a server error, or a transport failure once the request may have
// been sent (a timeout, a connection dropped before the answer). A 200
// whose body is unreadable is ambiguous too: it cannot be trusted either
// way.
func isAmbiguous(at attempt) bool {
	switch {
	case at.status == 0:
		return at.maybeSent
	case at.status >= 500:
		return true
	case at.status >= 200 && at.status < 300:
		var be *BodyError
		return errors.As(at.err, &be)
	}
	return false
}

func retryable(at attempt) bool {
	switch at.status {
	case 0:
		return true // connection errors; context errors were handled before
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// finalError is the error returned when the budget does not allow another
// attempt.
func finalError(at attempt) error {
	if at.status != http.StatusTooManyRequests {
		return at.err
	}
	var apiErr *APIError
	if !errors.As(at.err, &apiErr) {
		var be *BodyError
		if !errors.As(at.err, &be) {
			return at.err
		}
		apiErr = &APIError{StatusCode: be.StatusCode, CFRay: be.CFRay, Method: be.Method, Path: be.Path}
	}
	return &RateLimitError{RetryAfter: at.retryAfter, Err: apiErr}
}

// backoff returns a jittered exponential wait in [d/2, d], with d doubling
// from the base up to the maximum.
func (c *Client) backoff(n int) time.Duration {
	d := c.backoffBase
	for i := 0; i < n && d < c.backoffMax; i++ {
		d *= 2
	}
	d = min(d, c.backoffMax)
	half := d / 2
	return half + rand.N(d-half+1)
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.onWait != nil {
		c.onWait(d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send makes one attempt and classifies its result.
func (c *Client) send(ctx context.Context, req request) attempt {
	// The transport reports these from its own goroutines.
	var getConn, gotConn, wrote atomic.Bool
	trace := &httptrace.ClientTrace{
		GetConn:      func(string) { getConn.Store(true); c.traced.Store(true) },
		GotConn:      func(httptrace.GotConnInfo) { gotConn.Store(true) },
		WroteRequest: func(info httptrace.WroteRequestInfo) { wrote.Store(info.Err == nil) },
	}
	hreq, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), req.method, req.url.String(), nil)
	if err != nil {
		return attempt{err: fmt.Errorf("cloudflare: building %s %s: %w", req.method, req.url.Path, err)}
	}
	c.auth.apply(hreq.Header)
	hreq.Header.Set("User-Agent", c.userAgent)
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("Content-Type", "application/json")

	if err := ctx.Err(); err != nil {
		// The retry budget ended as the attempt began.
		return attempt{err: fmt.Errorf("cloudflare: %s %s: %w: %w", req.method, req.url.Path, ErrNotSent, err)}
	}
	resp, err := c.httpClient.Do(hreq)
	if err != nil {
		// A request is surely unsent when dialling failed, when it never
		// got a connection (the deadline can end an attempt before or
		// while it waits for one), or when a connection was obtained but
		// the request never finished writing. Without trace events (a
		// custom transport), assume it was sent.
		noConn := !gotConn.Load() && (getConn.Load() || c.traced.Load())
		if isDialError(err) || noConn || (gotConn.Load() && !wrote.Load()) {
			return attempt{err: fmt.Errorf("cloudflare: %s %s: %w: %w", req.method, req.url.Path, ErrNotSent, stripURL(err))}
		}
		return attempt{
			err:       fmt.Errorf("cloudflare: %s %s: %w", req.method, req.url.Path, stripURL(err)),
			maybeSent: true,
		}
	}
	defer resp.Body.Close()
	at := attempt{status: resp.StatusCode, maybeSent: true}
	at.retryAfter, at.hasRetry = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	at.res, at.err = c.readResponse(req, resp)
	return at
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// stripURL drops the URL from a *url.Error: it repeats the method and path
// the caller already adds, and a proxy URL could carry user info.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// maxRetryAfter caps Retry-After seconds so the duration cannot overflow;
// any such wait is beyond every retry budget anyway.
const maxRetryAfter = 24 * 60 * 60

// parseRetryAfter reads Retry-After as seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(min(secs, maxRetryAfter)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// readResponse reads at most maxBodySize bytes and turns the answer into a
// response or a typed error.
func (c *Client) readResponse(req request, resp *http.Response) (*response, error) {
	ray := resp.Header.Get("Cf-Ray")
	bodyErr := func(reason string, err error) *BodyError {
		return &BodyError{StatusCode: resp.StatusCode, CFRay: ray, Reason: reason, Method: req.method, Path: req.url.Path, Err: err}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodySize+1))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, bodyErr("truncated", err)
		}
		return nil, bodyErr("unreadable", err)
	}
	if len(body) > maxBodySize {
		return nil, bodyErr("too large", nil)
	}
	env, reason, err := decodeEnvelope(body)
	if reason != "" {
		return nil, bodyErr(reason, err)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300 && *env.Success
	if ok {
		return &response{status: resp.StatusCode, env: env, cfRay: ray}, nil
	}
	apiErr := &APIError{
		StatusCode: resp.StatusCode,
		Errors:     env.Errors,
		Messages:   env.Messages,
		CFRay:      ray,
		Method:     req.method,
		Path:       req.url.Path,
	}
	if req.permission != "" && isPermissionDenied(apiErr) {
		return nil, &PermissionError{Permission: req.permission, Err: apiErr}
	}
	return nil, apiErr
}

// isPermissionDenied recognises Cloudflare's answer to a token that lacks a
// permission: 403 with an authentication error code.
func isPermissionDenied(e *APIError) bool {
	if e.StatusCode != http.StatusForbidden {
		return false
	}
	if e.HasCode(codeAuthentication) || e.HasCode(codeUnauthorized) {
		return true
	}
	for _, d := range e.Errors {
		m := strings.ToLower(d.Message)
		if strings.Contains(m, "authentication") || strings.Contains(m, "unauthorized") || strings.Contains(m, "permission") {
			return true
		}
	}
	return false
}

// decodeEnvelope parses a body, giving a BodyError reason when it is not a
// Cloudflare envelope.
func decodeEnvelope(body []byte) (envelope, string, error) {
	var env envelope
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return env, "empty", nil
	}
	if trimmed[0] != '{' {
		return env, "not JSON", nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&env); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return env, "truncated", err
		}
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return env, "not JSON", err
		}
		return env, "not a Cloudflare envelope", err
	}
	if dec.More() {
		return env, "not JSON", errors.New("data after the JSON value")
	}
	if env.Success == nil {
		return env, "not a Cloudflare envelope", errors.New(`no "success" field`)
	}
	return env, "", nil
}
