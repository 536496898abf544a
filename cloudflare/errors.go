package cloudflare

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Permissions an API token needs, as Cloudflare's dashboard names them.
const (
	PermZeroTrustWrite   = "Zero Trust Write"
	PermZeroTrustPIIRead = "Zero Trust PII Read"
	PermAuditLogsRead    = "Access: Audit Logs Read"
)

var (
	// ErrUserNotFound means no Zero Trust user has exactly this email.
	ErrUserNotFound = errors.New("cloudflare: no Zero Trust user has this email")
	// ErrInvalidUserID means a user id is not a canonical UUID; no request
	// was sent.
	ErrInvalidUserID = errors.New("cloudflare: user id is not a UUID")
	// ErrInvalidEmail means an email is empty or malformed; no request was
	// sent.
	ErrInvalidEmail = errors.New("cloudflare: not an email address")
	// ErrResetNotApplied means a reset request failed ambiguously, but
	// Cloudflare answered every attempt (500, 502, 503, an unreadable
	// 2xx), and reading the user's last_reset_time afterwards showed none
	// was applied: nothing was changed.
	ErrResetNotApplied = errors.New("cloudflare: the risk score reset was not applied")
	// ErrResetOutcomeUnknown means a reset request failed ambiguously and
	// its outcome could not be read back either, or (ErrResetUnconfirmed)
	// could not be read back yet.
	ErrResetOutcomeUnknown = errors.New("cloudflare: the outcome of the risk score reset is unknown")
	// ErrResetUnconfirmed means a reset request went unanswered (a timeout,
	// a dropped connection, a 504) and, by the end of the settle window,
	// the user's last_reset_time did not show it: Cloudflare may still be
	// working on it and apply it later. errors.Is also matches it with
	// ErrResetOutcomeUnknown.
	ErrResetUnconfirmed error = &refinedError{
		msg:     "cloudflare: the risk score reset is not visible on the user, but Cloudflare may still apply it",
		refines: ErrResetOutcomeUnknown,
	}
	// ErrLookupIncomplete means the email search matched more users than
	// the client reads (maxUserPages pages), so the answer could be wrong.
	ErrLookupIncomplete = errors.New("cloudflare: too many users match the email search to read them all")
	// ErrResetNotVisible is the VerifyErr of an accepted reset whose
	// read-back still shows an earlier last_reset_time.
	ErrResetNotVisible = errors.New("cloudflare: last_reset_time does not show the reset")
	// ErrNotSent means Cloudflare could not be reached at all: the request
	// was surely never sent, so nothing changed.
	ErrNotSent = errors.New("cloudflare could not be reached (the request was not sent)")
	// ErrTokenVerifyUnsupported means VerifyToken was called with legacy
	// key credentials, which Cloudflare's verify endpoints do not accept.
	ErrTokenVerifyUnsupported = errors.New("cloudflare: only API tokens can be verified; legacy API keys cannot")
)

// refinedError is a sentinel that is a special case of another: errors.Is
// matches both.
type refinedError struct {
	msg     string
	refines error
}

func (e *refinedError) Error() string { return e.msg }
func (e *refinedError) Unwrap() error { return e.refines }

// ErrorDetail is one entry of an envelope's errors or messages.
type ErrorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// APIError is a response Cloudflare marked as failed: an HTTP error status,
// or success:false.
type APIError struct {
	StatusCode int
	Errors     []ErrorDetail
	Messages   []ErrorDetail
	CFRay      string
	Method     string
	Path       string // without the query
}

// Error is one line with the status, every code and message, and the
// cf-ray. It never contains headers or credentials.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cloudflare: %s %s: HTTP %d", e.Method, e.Path, e.StatusCode)
	if e.StatusCode >= 200 && e.StatusCode < 300 {
		b.WriteString(" with success=false")
	}
	b.WriteString(": ")
	if len(e.Errors) == 0 {
		b.WriteString("no error details")
	}
	writeDetails(&b, e.Errors)
	if len(e.Messages) > 0 {
		b.WriteString("; messages: ")
		writeDetails(&b, e.Messages)
	}
	fmt.Fprintf(&b, " (cf-ray %s)", rayOrNone(e.CFRay))
	return b.String()
}

func writeDetails(b *strings.Builder, details []ErrorDetail) {
	for i, d := range details {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(b, "code %d: %s", d.Code, oneLine(d.Message))
	}
}

// HasCode reports whether any error entry carries this code.
func (e *APIError) HasCode(code int) bool {
	for _, d := range e.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// PermissionError is a 403 authentication error: the credentials lack the
// permission the call needs.
type PermissionError struct {
	Permission string // PermZeroTrustWrite, PermZeroTrustPIIRead or PermAuditLogsRead
	Err        *APIError
}

// Error describes the failure without credentials.
func (e *PermissionError) Error() string {
	code := 0
	if len(e.Err.Errors) > 0 {
		code = e.Err.Errors[0].Code
	}
	if e.Err.HasCode(codeAuthentication) {
		code = codeAuthentication
	}
	return fmt.Sprintf("cloudflare: the API token lacks the %q permission (HTTP %d, code %d, cf-ray %s)",
		e.Permission, e.Err.StatusCode, code, rayOrNone(e.Err.CFRay))
}

// Unwrap returns the underlying *APIError.
func (e *PermissionError) Unwrap() error { return e.Err }

// RateLimitError is returned when Cloudflare still answers 429 once the
// retry budget is spent.
type RateLimitError struct {
	RetryAfter time.Duration // from the last Retry-After, 0 when absent
	Err        *APIError
}

// Error describes the failure without credentials.
func (e *RateLimitError) Error() string {
	wait := "no Retry-After"
	if e.RetryAfter > 0 {
		wait = "Retry-After " + e.RetryAfter.String()
	}
	return fmt.Sprintf("cloudflare: still rate limited when the retry budget ran out (%s): %v", wait, e.Err)
}

// Unwrap returns the underlying *APIError.
func (e *RateLimitError) Unwrap() error { return e.Err }

// BodyError is a response whose body could not be understood.
type BodyError struct {
	StatusCode int
	CFRay      string
	Reason     string // "not JSON", "truncated", "too large", "empty", "not a Cloudflare envelope", "unexpected result"
	Method     string
	Path       string
	Err        error // the decoding or reading error, if any
}

// Error describes the failure without credentials.
func (e *BodyError) Error() string {
	return fmt.Sprintf("cloudflare: %s %s: HTTP %d response body is %s (cf-ray %s)",
		e.Method, e.Path, e.StatusCode, e.Reason, rayOrNone(e.CFRay))
}

// Unwrap returns the decoding or reading error.
func (e *BodyError) Unwrap() error { return e.Err }

// AmbiguousUserError means several Zero Trust users have the same email.
type AmbiguousUserError struct {
	Email   string
	Matches int
}

// Error describes the failure without credentials.
func (e *AmbiguousUserError) Error() string {
	return fmt.Sprintf("cloudflare: %d Zero Trust users have the email %q", e.Matches, e.Email)
}

func rayOrNone(ray string) string {
	if ray == "" {
		return "none"
	}
	return ray
}

// oneLine keeps server-provided text on one line and short.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return truncate(strings.TrimSpace(s), 300)
}
