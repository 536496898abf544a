package bot

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// TargetKind says how a command named the user whose score is reset.
type TargetKind int

// The forms a target can take.
const (
	TargetUUID      TargetKind = iota + 1 // Cloudflare user id
	TargetEmail                           // email address, plain or as <mailto:…>
	TargetSlackUser                       // <@U…>, resolved through the user's Slack email
)

// Target is a parsed, validated reference to a user. Value is a canonical
// UUID, a lower-case email address or a Slack user ID; nothing else gets
// through the parser.
type Target struct {
	Kind  TargetKind
	Value string
}

// Command is a parsed `/risk-reset` invocation.
type Command struct {
	Help   bool // empty text or "help": show the usage
	Target Target
	Reason string
}

// Limits on command text. Slack caps slash command text at 4000
// characters anyway; the reason limit keeps cards and audit records legible.
const (
	maxCommandLen = 3000
	maxReasonLen  = 1000
)

// UsageError is a command the bot cannot act on. Message is safe to show to
// the user and never echoes the raw input back.
type UsageError struct {
	Message string
}

func (e *UsageError) Error() string { return e.Message }

var (
	slackUserRef = regexp.MustCompile(`^<@([UW][A-Z0-9]{2,})(\|[^<>]*)?>$`)
	mailtoRef    = regexp.MustCompile(`^<mailto:([^|<>]+)\|[^<>]*>$`)
	// Addresses are limited to the characters real mailboxes use, less
	// the URL syntax characters RFC 5322 would allow (? # % /), so nothing
	// that reaches Cloudflare's query string can carry path or query syntax.
	plainEmail = regexp.MustCompile(`^[A-Za-z0-9.!$&'*+=^_{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$`)
)

// ParseCommand parses the text of `/risk-reset <target> [reason]` as Slack
// sends it with escaping on.
func ParseCommand(text string) (Command, error) {
	if len(text) > maxCommandLen {
		return Command{}, &UsageError{Message: fmt.Sprintf("That command is too long (over %d characters). Give one user and a short reason.", maxCommandLen)}
	}
	if !utf8.ValidString(text) {
		return Command{}, &UsageError{Message: "That command is not valid text."}
	}
	text = strings.TrimSpace(text)
	if text == "" || strings.EqualFold(text, "help") {
		return Command{Help: true}, nil
	}
	first, rest, _ := strings.Cut(text, " ")
	first, rest = strings.TrimSpace(first), strings.TrimSpace(unescape(rest))
	// A tab or newline right after the target also separates it.
	if i := strings.IndexAny(first, "\t\n\r"); i >= 0 {
		first, rest = first[:i], strings.TrimSpace(unescape(first[i:])+" "+rest)
	}
	target, err := parseTarget(first)
	if err != nil {
		return Command{}, err
	}
	if next, _, _ := strings.Cut(rest, " "); next != "" {
		if _, err := parseTarget(strings.TrimSpace(next)); err == nil {
			return Command{}, &UsageError{Message: "Reset one user at a time: give a single user, then the reason."}
		}
	}
	if utf8.RuneCountInString(rest) > maxReasonLen {
		return Command{}, &UsageError{Message: fmt.Sprintf("The reason is too long (over %d characters).", maxReasonLen)}
	}
	return Command{Target: target, Reason: rest}, nil
}

var errNotTarget = errors.New("not a target")

func parseTarget(s string) (Target, error) {
	if m := slackUserRef.FindStringSubmatch(s); m != nil {
		return Target{Kind: TargetSlackUser, Value: m[1]}, nil
	}
	if m := mailtoRef.FindStringSubmatch(s); m != nil {
		return emailTarget(unescape(m[1]))
	}
	switch {
	case strings.HasPrefix(s, "<#"):
		return Target{}, &UsageError{Message: "That is a channel. Name one user: a Slack mention, an email address or a Cloudflare user ID."}
	case strings.HasPrefix(s, "<!"):
		return Target{}, &UsageError{Message: "Group mentions such as @here, @channel or user groups are not accepted. Name one user."}
	case strings.HasPrefix(s, "<"):
		return Target{}, &UsageError{Message: "That is a link, not a user. Name one user: a Slack mention, an email address or a Cloudflare user ID."}
	}
	if len(s) == 36 {
		if id, err := uuid.Parse(s); err == nil {
			return Target{Kind: TargetUUID, Value: id.String()}, nil
		}
	}
	if strings.Contains(s, "@") {
		return emailTarget(unescape(s))
	}
	return Target{}, errNotTarget
}

func emailTarget(s string) (Target, error) {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" || !plainEmail.MatchString(s) {
		return Target{}, &UsageError{Message: "That does not look like an email address."}
	}
	return Target{Kind: TargetEmail, Value: strings.ToLower(s)}, nil
}

// unescape undoes Slack's escaping of the three characters it escapes in
// command text.
func unescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// usageText is the help shown for `/risk-reset help`, empty text and any
// input the parser rejects.
const usageText = "*Usage:* `/risk-reset <user> [reason]`\n" +
	"`<user>` is one of: a Slack mention (`@alice`), an email address (`alice@example.com`) or a Cloudflare Zero Trust user ID (`f2108713-1206-4e84-8b80-0e71a6a1c67b`).\n" +
	"Example: `/risk-reset alice@example.com travel false positive, INC-4711`"

// usageFor returns what to tell a user whose command could not be parsed.
func usageFor(err error) string {
	if ue, ok := errors.AsType[*UsageError](err); ok {
		return ue.Message + "\n" + usageText
	}
	return "I could not read a user in that command.\n" + usageText
}
