package main

import (
	"strings"
	"testing"

	"risk-reset-bot/internal/cfapitest"
	"risk-reset-bot/internal/slackfake"
)

func TestEveryTargetFormFindsAlice(t *testing.T) {
	forms := map[string]string{
		"uuid":             aliceID,
		"upper-case uuid":  strings.ToUpper(aliceID),
		"email":            aliceEmail,
		"mailto":           "<mailto:alice@example.com|alice@example.com>",
		"mention":          "<@U0ALICE>",
		"mention and name": "<@U0ALICE|alice>",
		"email other case": "ALICE@Example.COM",
		"slack email case": "<@U0ALICE2|alice2>",
	}
	for name, target := range forms {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			// The same person in Slack with an address typed in another case.
			h.slack.AddUser(slackfake.User{ID: "U0ALICE2", Name: "alice2", Email: "Alice@Example.com"})
			h.start()

			h.command(analyst, channelOps, target+" travel false positive")
			card := h.card(channelOps, aliceID)
			for _, want := range []string{aliceEmail, "Alice Example", "travel false positive"} {
				if !strings.Contains(blockText(t, card), want) {
					t.Errorf("card lacks %q: %s", want, blockText(t, card))
				}
			}
			if got := h.answersTo(analyst, ""); len(got) != 0 {
				t.Errorf("requester got ephemerals: %q", got)
			}
		})
	}
}

func TestSlackUserWithoutEmail(t *testing.T) {
	h := newHarness(t)
	h.slack.AddUser(slackfake.User{ID: "U0NOMAIL", Name: "nomail"})
	h.start()

	h.command(analyst, channelOps, "<@U0NOMAIL|nomail> travel")
	h.ephemeral(analyst, "I cannot read the email of <@U0NOMAIL>")
	h.assertNoCard()
	if n := h.cfSrv.RequestCount(); n != 0 {
		t.Errorf("Cloudflare got %d requests for a user without email, want 0", n)
	}
}

func TestUnknownSlackUser(t *testing.T) {
	h := newHarness(t)
	h.start()

	h.command(analyst, channelOps, "<@U0GHOST> travel")
	h.ephemeral(analyst, "could not find that Slack user")
	h.assertNoCard()
}

func TestEmailNotFound(t *testing.T) {
	h := newHarness(t)
	h.start()

	h.command(analyst, channelOps, "nobody@example.com travel")
	h.ephemeral(analyst, "No Cloudflare Zero Trust user matches nobody@example.com")
	h.assertNoCard()
}

func TestEmailMatchesSeveralUsers(t *testing.T) {
	h := newHarness(t)
	h.cf.AddUser(cfapitest.FakeUser{ID: "5a3e1c2b-6d4f-4e8a-9b7c-1d2e3f4a5b6c", Email: "carol@example.com", Name: "Carol"})
	h.cf.AddUser(cfapitest.FakeUser{ID: "6b4f2d3c-7e5a-4f9b-8c8d-2e3f4a5b6c7d", Email: "Carol@Example.com", Name: "Carol Too"})
	h.start()

	h.command(analyst, channelOps, "carol@example.com travel")
	h.ephemeral(analyst, "2 Cloudflare Zero Trust users match carol@example.com; use the Cloudflare user ID")
	h.assertNoCard()
}

func TestUnknownUUID(t *testing.T) {
	h := newHarness(t)
	h.start()

	h.command(analyst, channelOps, "00000000-0000-4000-8000-000000000000 travel")
	h.ephemeral(analyst, "no risk-scoring record")
	h.assertNoCard()
}
