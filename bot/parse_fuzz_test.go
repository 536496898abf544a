package bot

import (
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// parseSeeds are the target forms of DESIGN section 5, the inputs of the
// parse tests and the shapes Slack's escaping and people's typing produce.
var parseSeeds = []string{
	// What the design promises to read.
	"f2108713-1206-4e84-8b80-0e71a6a1c67b",
	"F2108713-1206-4E84-8B80-0E71A6A1C67B travel",
	"alice@example.com",
	"Alice@Example.COM new laptop",
	"alice@example.com travel false positive, INC-4711",
	"<mailto:alice@example.com|alice@example.com>",
	"<mailto:alice@example.com|alice@example.com> travel false positive, INC-4711",
	"<@U0123ABC|alice> flagged by mistake",
	"<@U0123>",
	"<@W0123ABC>",
	"a&amp;b@example.com",
	"alice@example.com ticket &lt;INC-1&gt; &amp; more",
	"   alice@example.com    travel   ",
	"alice@example.com\ttravel",
	"alice@example.com\nline two",
	"", "   ", "help", "HELP", " help ",
	// What it must refuse.
	"<#C0123|general>",
	"<!here>",
	"<!channel> reset",
	"<!subteam^S0123|@leads>",
	"<https://evil.example/x|click>",
	"alice@example.com bob@example.com",
	"alice@example.com <@U0123>",
	"<@U0123> <mailto:bob@example.com|bob@example.com>",
	"../../accounts/x/reset",
	"f2108713-1206-4e84-8b80-0e71a6a1c67b/../x",
	"urn:uuid:f2108713-1206-4e84-8b80-0e71a6a1c67b",
	"{f2108713-1206-4e84-8b80-0e71a6a1c67b}",
	"f21087131206-4e84-8b80-0e71a6a1c67b0",
	"alice@example.com/../x",
	"alice@example.com?x=1",
	"alice@example.com#frag",
	"alice%40example.com",
	"Alice<alice@example.com>",
	"\"alice\"@example.com",
	"alice@exämple.com",
	"<mailto:alice@example.com&gt;|x>",
	"&lt;@U0123&gt;",
	"<@u0123>",
	"<@U0123|a|b>",
	"alice",
	"alice@example.com\u00a0travel",
	"alice@example.com \xff",
	"\xff\xfe",
	"alice@example.com \x00",
	strings.Repeat("a", 5000),
	strings.Repeat("a", 3000),
	"alice@example.com " + strings.Repeat("r", 1001),
	"alice@example.com " + strings.Repeat("é", 1000),
	"alice@example.com " + strings.Repeat("é", 1001),
	"alice@example.com " + strings.Repeat("&amp;", 600),
}

// FuzzParseCommand checks that whatever text arrives, ParseCommand answers
// with help, the usage, or a target in one of the three canonical forms
// that are safe to put in a Cloudflare path or query.
//
//	go test -run=^$ -fuzz=FuzzParseCommand -fuzztime=20s ./bot/
func FuzzParseCommand(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		checkParsed(t, text)
	})
}

// TestParseCommandEmailsCarryNoURLSyntax pins inputs the fuzzer found: an
// email target must not carry '?' or '#', which would end a Cloudflare
// query value if it were ever put in a URL unescaped.
func TestParseCommandEmailsCarryNoURLSyntax(t *testing.T) {
	for _, text := range []string{
		"#@0.0",
		"a?b@example.com",
		"a#b@example.com",
		"<mailto:a?b@example.com|a?b@example.com> travel",
	} {
		t.Run(text, func(t *testing.T) { checkParsed(t, text) })
	}
}

// maxReasonRunes is the longest reason a card and audit record carry.
const maxReasonRunes = 1000

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// checkParsed runs ParseCommand on text and checks the properties every
// answer must have.
func checkParsed(t *testing.T, text string) {
	t.Helper()
	cmd, err := ParseCommand(text)
	if err != nil {
		checkRejected(t, text, cmd, err)
		return
	}
	if cmd.Help {
		if trimmed := strings.TrimSpace(text); trimmed != "" && !strings.EqualFold(trimmed, "help") {
			t.Errorf("ParseCommand(%q) = help", text)
		}
		if cmd.Target != (Target{}) || cmd.Reason != "" {
			t.Errorf("ParseCommand(%q) = help with a target or reason: %+v", text, cmd)
		}
		return
	}
	if problem := targetProblem(cmd.Target); problem != "" {
		t.Errorf("ParseCommand(%q) target %+v: %s", text, cmd.Target, problem)
	}
	if n := utf8.RuneCountInString(cmd.Reason); n > maxReasonRunes {
		t.Errorf("ParseCommand(%q) reason has %d runes, over %d", text, n, maxReasonRunes)
	}
}

func checkRejected(t *testing.T, text string, cmd Command, err error) {
	t.Helper()
	var ue *UsageError
	if !errors.As(err, &ue) && !errors.Is(err, errNotTarget) {
		t.Errorf("ParseCommand(%q) error %v is neither a UsageError nor errNotTarget", text, err)
	}
	if cmd != (Command{}) {
		t.Errorf("ParseCommand(%q) returned %+v with its error", text, cmd)
	}
	msg := usageFor(err)
	if !strings.Contains(msg, usageText) {
		t.Errorf("ParseCommand(%q): the answer %q lacks the usage", text, msg)
	}
	echoed := strings.Contains(msg, text) || strings.Contains(err.Error(), text)
	if len(text) > 40 && echoed && !strings.Contains(fixedAnswers(), text) {
		t.Errorf("ParseCommand(%q): the answer %q echoes the input", text, msg)
	}
}

// fixedAnswers returns what the parser says to inputs of every class it
// refuses. An input that is part of this text (such as the usage example)
// shows up in an answer without being echoed.
var fixedAnswers = sync.OnceValue(func() string {
	var sb strings.Builder
	for _, probe := range []string{
		"x", "<#C1|x>", "<!here>", "<http://x|y>", "a@b", "a@b.co c@d.co",
		strings.Repeat("z", 3001), "\xff", "a@b.co " + strings.Repeat("z", 1001),
	} {
		if _, err := ParseCommand(probe); err != nil {
			sb.WriteString(usageFor(err) + "\n")
		}
	}
	return sb.String()
})

// targetProblem says what is wrong with a parsed target, or "".
func targetProblem(tg Target) string {
	v := tg.Value
	switch tg.Kind {
	case TargetUUID:
		id, err := uuid.Parse(v)
		if err != nil || id.String() != v {
			return "not a canonical UUID"
		}
	case TargetEmail:
		switch {
		case v != strings.ToLower(v):
			return "email not lower case"
		case !plainEmail.MatchString(v):
			return "email does not match the plain-email pattern"
		case strings.ContainsAny(v, "/?#<>") || strings.IndexFunc(v, unicode.IsSpace) >= 0:
			return "email carries URL syntax or whitespace"
		}
	case TargetSlackUser:
		if !slackUserID.MatchString(v) {
			return "not a Slack user ID"
		}
	default:
		return "unknown kind"
	}
	return ""
}
