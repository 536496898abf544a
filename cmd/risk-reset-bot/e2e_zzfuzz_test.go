package main

import (
	"testing"

	"risk-reset-bot/bot"
)

func FuzzZZParse(f *testing.F) {
	for _, s := range []string{"alice@example.com x", "<@U0ALICE|a>", "<mailto:a@b.c|a@b.c>", "f2108713-1206-4e84-8b80-0e71a6a1c67b r", "a\tb c", "&lt;@U1&gt;", "help"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { _, _ = bot.ParseCommand(s) })
}
