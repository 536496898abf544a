package bot

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCommandTargets(t *testing.T) {
	tests := []struct {
		name, text string
		want       Command
	}{
		{"uuid", "f2108713-1206-4e84-8b80-0e71a6a1c67b", Command{Target: Target{TargetUUID, "f2108713-1206-4e84-8b80-0e71a6a1c67b"}}},
		{"uuid upper case is canonicalised", "F2108713-1206-4E84-8B80-0E71A6A1C67B travel", Command{Target: Target{TargetUUID, "f2108713-1206-4e84-8b80-0e71a6a1c67b"}, Reason: "travel"}},
		{"plain email", "alice@example.com", Command{Target: Target{TargetEmail, "alice@example.com"}}},
		{"email compared case-insensitively", "Alice@Example.COM new laptop", Command{Target: Target{TargetEmail, "alice@example.com"}, Reason: "new laptop"}},
		{"mailto as Slack escapes it", "<mailto:alice@example.com|alice@example.com> travel false positive, INC-4711",
			Command{Target: Target{TargetEmail, "alice@example.com"}, Reason: "travel false positive, INC-4711"}},
		{"email with escaped ampersand", "a&amp;b@example.com", Command{Target: Target{TargetEmail, "a&b@example.com"}}},
		{"mention with name", "<@U0123ABC|alice> flagged by mistake", Command{Target: Target{TargetSlackUser, "U0123ABC"}, Reason: "flagged by mistake"}},
		{"mention without name", "<@W0123ABC>", Command{Target: Target{TargetSlackUser, "W0123ABC"}}},
		{"reason unescaped", "alice@example.com ticket &lt;INC-1&gt; &amp; more", Command{Target: Target{TargetEmail, "alice@example.com"}, Reason: "ticket <INC-1> & more"}},
		{"extra spaces", "   alice@example.com    travel   ", Command{Target: Target{TargetEmail, "alice@example.com"}, Reason: "travel"}},
		{"tab after target", "alice@example.com\ttravel", Command{Target: Target{TargetEmail, "alice@example.com"}, Reason: "travel"}},
		{"empty is help", "", Command{Help: true}},
		{"blank is help", "   ", Command{Help: true}},
		{"help", "HELP", Command{Help: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.text)
			if err != nil {
				t.Fatalf("ParseCommand(%q) error: %v", tt.text, err)
			}
			if got != tt.want {
				t.Errorf("ParseCommand(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestParseCommandRejects(t *testing.T) {
	tests := []struct {
		name, text, wantMsg string
	}{
		{"channel reference", "<#C0123|general>", "channel"},
		{"here", "<!here>", "Group mentions"},
		{"channel mention", "<!channel> reset", "Group mentions"},
		{"user group", "<!subteam^S0123|@leads>", "Group mentions"},
		{"link", "<https://evil.example/x|click>", "link"},
		{"two targets", "alice@example.com bob@example.com", "one user at a time"},
		{"email then mention", "alice@example.com <@U0123>", "one user at a time"},
		{"path", "../../accounts/x/reset", "could not read a user"},
		{"uuid with path suffix", "f2108713-1206-4e84-8b80-0e71a6a1c67b/../x", "could not read a user"},
		{"urn uuid", "urn:uuid:f2108713-1206-4e84-8b80-0e71a6a1c67b", "could not read a user"},
		{"email with path", "alice@example.com/../x", "email address"},
		{"email with query", "alice@example.com?x=1", "email address"},
		{"display name form", "Alice<alice@example.com>", "email address"},
		{"word", "alice", "could not read a user"},
		{"too long", strings.Repeat("a", 5000), "too long"},
		{"reason too long", "alice@example.com " + strings.Repeat("r", 1001), "reason is too long"},
		{"bad mention id", "<@u0123>", "link"},
		{"invalid utf8", "alice@example.com \xff", "not valid text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCommand(tt.text)
			if err == nil {
				t.Fatalf("ParseCommand(%q) accepted it", tt.text)
			}
			msg := usageFor(err)
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", msg, tt.wantMsg)
			}
			if !strings.Contains(msg, "/risk-reset <user> [reason]") {
				t.Errorf("message %q lacks the usage", msg)
			}
			if len(tt.text) > 20 && strings.Contains(msg, tt.text) {
				t.Errorf("message echoes the raw input")
			}
			var ue *UsageError
			if !errors.As(err, &ue) && !errors.Is(err, errNotTarget) {
				t.Errorf("error %v is neither a UsageError nor errNotTarget", err)
			}
		})
	}
}
