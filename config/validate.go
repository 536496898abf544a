package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	principalIDPattern = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)
	channelIDPattern   = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	accountIDPattern   = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
)

const (
	principalIDKind = "a Slack user (U…, W…) or user group (S…) ID"
	channelIDKind   = "a Slack channel ID (C…, G…)"
)

// maxSecretFileSize bounds what a *_FILE may hold, so a wrong path (a log
// file, /dev/zero) fails fast instead of filling memory.
const maxSecretFileSize = 64 << 10

// validator collects problems while turning raw strings into typed values.
type validator struct {
	problems []Problem
}

func (v *validator) add(name, format string, args ...any) {
	v.problems = append(v.problems, Problem{Var: name, Message: fmt.Sprintf(format, args...)})
}

// secretValue is a secret and the variable it came from (VAR or VAR_FILE),
// so that later problems name what the operator has to fix.
type secretValue struct {
	value  string
	source string
}

// secret reads the secret name from its variable or from name_FILE. provided
// reports whether the operator set either; when a problem has already been
// recorded the value is empty but provided is still true, so callers do not
// add a misleading "required".
func (v *validator) secret(name, value, file string) (s secretValue, provided bool) {
	fileVar := name + "_FILE"
	switch {
	case value != "" && file != "":
		v.add(name, "set either %s or %s, not both", name, fileVar)
		return secretValue{}, true
	case file != "":
		content, err := readSecretFile(file)
		if err != nil {
			v.add(fileVar, "%v", err)
			return secretValue{}, true
		}
		s = secretValue{value: content, source: fileVar}
	case value != "":
		s = secretValue{value: value, source: name}
	default:
		return secretValue{}, false
	}
	if strings.ContainsFunc(s.value, isSpaceOrControl) {
		v.add(s.source, "contains whitespace or control characters")
		return secretValue{}, true
	}
	if strings.Contains(s.value, examplePlaceholder) {
		v.add(s.source, "still holds the placeholder from risk-reset-bot.env.example; paste the real value")
		return secretValue{}, true
	}
	return s, true
}

// examplePlaceholder marks the secrets in risk-reset-bot.env.example, so a
// copy that was never filled in fails at start rather than at Slack.
const examplePlaceholder = "replace-with-"

func isSpaceOrControl(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r)
}

// readSecretFile returns the file's content without surrounding whitespace.
// Its errors carry the OS error text but never the content.
func readSecretFile(path string) (string, error) {
	// Stat first: opening a FIFO or a device would block start-up or read
	// forever, and no secret lives in one.
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cannot read file: %w", err)
	}
	if info.IsDir() {
		return "", fmt.Errorf("cannot read file: %s is a directory", path)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("cannot read file: %s is not a regular file (%s)", path, info.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read file: %w", err)
	}
	if len(b) > maxSecretFileSize {
		return "", fmt.Errorf("file %s is larger than %d KiB; expected a single secret", path, maxSecretFileSize>>10)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", errors.New("file " + path + " is empty")
	}
	return s, nil
}

func (v *validator) slackToken(name, value, file, prefix string) string {
	s, provided := v.secret(name, value, file)
	if !provided {
		v.add(name, "required (or %s_FILE)", name)
		return ""
	}
	if s.value == "" {
		return ""
	}
	if !strings.HasPrefix(s.value, prefix) {
		v.add(s.source, "must start with %s (got %s)", prefix, describeWrongSecret(s.value))
		return ""
	}
	return s.value
}

// describeWrongSecret helps spot a token pasted into the wrong variable. It
// names the token type when the value starts like a Slack token (the prefix
// is not secret) and shows nothing of any other value: the start of a
// Cloudflare token or a password is part of the secret.
func describeWrongSecret(s string) string {
	const shown = 5
	if len(s) <= 2*shown {
		return "a value too short to be a token"
	}
	for _, prefix := range slackTokenPrefixes {
		if strings.HasPrefix(s, prefix) {
			return fmt.Sprintf("a value starting with %q", prefix)
		}
	}
	return "a value that is not a Slack token"
}

// slackTokenPrefixes are the token types Slack issues; the bot wants xoxb-
// and xapp-, the others are common mistakes.
var slackTokenPrefixes = []string{"xoxb-", "xapp-", "xoxp-", "xoxe-", "xoxa-", "xoxr-", "xoxs-", "xoxc-", "xoxd-"}

// quoteValue quotes a non-secret value for a message. Long values are cut to
// their start: no valid value is that long, and a secret pasted into the
// wrong variable must not be echoed.
func quoteValue(s string) string {
	const maxShown = 24
	if utf8.RuneCountInString(s) <= maxShown {
		return strconv.Quote(s)
	}
	return strconv.Quote(string([]rune(s)[:5])) + "…"
}

func (v *validator) accountID(s string) string {
	switch {
	case s == "":
		v.add(varCloudflareAccountID, "required")
	case !accountIDPattern.MatchString(s):
		v.add(varCloudflareAccountID, "must be 32 hexadecimal characters (got %d characters%s)",
			utf8.RuneCountInString(s), nonHexNote(s))
	default:
		return strings.ToLower(s)
	}
	return ""
}

func nonHexNote(s string) string {
	isHex := func(r rune) bool {
		return '0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F'
	}
	if strings.ContainsFunc(s, func(r rune) bool { return !isHex(r) }) {
		return ", not all hexadecimal"
	}
	return ""
}

func (v *validator) email(name, s string) string {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s {
		v.add(name, "must be an email address such as soc@example.com (got %s)", quoteValue(s))
		return ""
	}
	return s
}

// baseURL checks that s is an absolute http(s) URL that paths can be
// appended to. Messages show the URL without user info or query, which may
// hold credentials.
func (v *validator) baseURL(name, s string) string {
	const want = "must be an absolute http:// or https:// URL"
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse errors quote the input, so they are not passed on.
		v.add(name, "%s", want)
		return ""
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(name, "%s (got %q)", want, displayURL(u))
		return ""
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		v.add(name, "must not have a query or fragment (got %q)", displayURL(u))
		return ""
	}
	return s
}

// cloudflareURL checks CLOUDFLARE_API_URL: a base URL without user info,
// since Cloudflare credentials go in headers and the client refuses a URL
// that carries any.
func (v *validator) cloudflareURL(s string) string {
	s = v.baseURL(varCloudflareAPIURL, s)
	if u, err := url.Parse(s); err == nil && u.User != nil {
		v.add(varCloudflareAPIURL, "must not carry a user name or password (got %q); use CLOUDFLARE_API_TOKEN", displayURL(u))
		return ""
	}
	return s
}

// displayURL renders a URL without anything that may be a credential.
func displayURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	if c.User != nil {
		c.User = url.User("redacted")
	}
	return c.String()
}

// idList splits a comma-separated list, trimming spaces, dropping empty items
// and duplicates, and reports each item that does not match pattern.
func (v *validator) idList(name, s string, pattern *regexp.Regexp, kind string) []string {
	var ids []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "", slices.Contains(ids, item):
		case !pattern.MatchString(item):
			v.add(name, "%s is not %s", quoteValue(item), kind)
		default:
			ids = append(ids, item)
		}
	}
	return ids
}

func (v *validator) channelID(name, s string) string {
	if s != "" && !channelIDPattern.MatchString(s) {
		v.add(name, "%s is not %s", quoteValue(s), channelIDKind)
		return ""
	}
	return s
}

func (v *validator) duration(name, s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	if err != nil {
		v.add(name, "not a duration (got %s); use a Go duration such as 30m, 1h or 90s", quoteValue(s))
		return 0, false
	}
	return d, true
}

func (v *validator) requestTTL(s string) time.Duration {
	d, ok := v.duration(varRequestTTL, s)
	switch {
	case !ok:
	case d <= 0:
		v.add(varRequestTTL, "must be greater than 0 (got %s)", quoteValue(s))
	case d < minRequestTTL:
		v.add(varRequestTTL, "must be at least 1m, so an approver has time to click (got %s)", quoteValue(s))
	case d > maxRequestTTL:
		v.add(varRequestTTL, "must be at most 24h (got %s)", quoteValue(s))
	default:
		return d
	}
	return 0
}

func (v *validator) groupCacheTTL(s string) time.Duration {
	d, ok := v.duration(varGroupCacheTTL, s)
	if ok && d < 0 {
		v.add(varGroupCacheTTL, "must not be negative; 0 disables the cache (got %s)", quoteValue(s))
		return 0
	}
	return d
}

func (v *validator) oneOf(name, s string, allowed ...string) string {
	lower := strings.ToLower(s)
	if !slices.Contains(allowed, lower) {
		v.add(name, "must be one of %s (got %s)", strings.Join(allowed, ", "), quoteValue(s))
		return ""
	}
	return lower
}

func (v *validator) hostPort(name, s string) string {
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		n, convErr := strconv.Atoi(port)
		if convErr == nil && n >= 0 && n <= 65535 {
			return s
		}
	}
	v.add(name, `must be host:port such as ":8080" or "127.0.0.1:8080" (got %s)`, quoteValue(s))
	return ""
}

// maxRequiredApprovals keeps the quorum within what a card can show and a
// team can gather before the request expires.
const maxRequiredApprovals = 5

// requiredApprovals parses the quorum and refuses one that the approvers
// could never reach. Groups can grow, so only a list of users alone is
// counted.
func (v *validator) requiredApprovals(s string, approverIDs []string) int {
	n, err := strconv.Atoi(s)
	users := 0
	for _, id := range approverIDs {
		if !strings.HasPrefix(id, "S") {
			users++
		}
	}
	switch {
	case err != nil || n < 1 || n > maxRequiredApprovals:
		v.add(varRequiredApprovals, "must be a whole number from 1 to %d (got %s)", maxRequiredApprovals, quoteValue(s))
		return 0
	case n > 1 && len(approverIDs) == 0:
		v.add(varRequiredApprovals, "is %d but APPROVER_IDS is empty; set approvers or leave it at 1", n)
		return 0
	case n > 1 && users == len(approverIDs) && users < n:
		v.add(varRequiredApprovals, "is %d but APPROVER_IDS names only %d users and no user group, so no request could ever be approved", n, users)
		return 0
	}
	return n
}

func (v *validator) boolean(name, s string) bool {
	b, err := strconv.ParseBool(s)
	if err != nil {
		v.add(name, "must be true or false (got %s)", quoteValue(s))
		return false
	}
	return b
}

func (v *validator) shutdownTimeout(s string) time.Duration {
	d, ok := v.duration(varShutdownTimeout, s)
	if ok && d <= 0 {
		v.add(varShutdownTimeout, "must be greater than 0 (got %s)", quoteValue(s))
		return 0
	}
	return d
}

// redisURL checks the scheme only: the URL may carry a password, so no part
// of it is echoed.
func (v *validator) redisURL(value, file string) string {
	s, provided := v.secret(varRedisURL, value, file)
	if !provided || s.value == "" {
		return ""
	}
	u, err := url.Parse(s.value)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		v.add(s.source, "must be a redis:// or rediss:// URL with a host, such as redis://redis:6379/0")
		return ""
	}
	return s.value
}
