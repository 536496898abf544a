package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunWithNoEnvironmentNamesEveryMissingVariable(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), nil, nil, &out)
	if err == nil {
		t.Fatal("run with no environment succeeded")
	}
	for _, v := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN"} {
		n := 0
		for _, line := range strings.Split(err.Error(), "\n") {
			if strings.HasPrefix(line, v+":") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s is named on %d lines, want 1:\n%v", v, n, err)
		}
	}
}

func TestRunNeverEchoesSecrets(t *testing.T) {
	secrets := []string{"xapp-NOT-A-BOT-TOKEN-SECRET-1", "xoxb-NOT-AN-APP-TOKEN-SECRET-2", "cf-token-SECRET-3", "cf-key-SECRET-4"}
	environ := []string{
		"SLACK_BOT_TOKEN=" + secrets[0],
		"SLACK_APP_TOKEN=" + secrets[1],
		"CLOUDFLARE_API_TOKEN=" + secrets[2],
		"CLOUDFLARE_API_KEY=" + secrets[3],
		"CLOUDFLARE_ACCOUNT_ID=" + secrets[2],
	}
	var out bytes.Buffer
	err := run(context.Background(), nil, environ, &out)
	if err == nil {
		t.Fatal("run with wrong values succeeded")
	}
	for _, s := range secrets {
		for _, where := range []string{err.Error(), out.String()} {
			// The first five characters (the token prefix) may be shown.
			if strings.Contains(where, s[5:]) {
				t.Errorf("secret %q appears in output:\n%s", s, where)
			}
		}
	}
}

func TestRunVersionAndUnknownArgument(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, nil, &out); err != nil || !strings.HasPrefix(out.String(), "risk-reset-bot ") {
		t.Errorf("version: err=%v out=%q", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, nil, &out); err == nil || !strings.Contains(err.Error(), "unknown argument") {
		t.Errorf("unknown argument: err=%v", err)
	}
}
