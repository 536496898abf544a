package redisstore_test

import (
	"context"
	"strings"
	"testing"

	"risk-reset-bot/redisstore"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	s, err := redisstore.Open(ctx, redisURL(t), redisstore.Options{Prefix: newPrefix(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v, want nil", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close = nil, want an error")
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	const password = "s3cr%3Aet-pw"
	dead := deadAddr(t)
	tests := []struct {
		name string
		url  string
	}{
		{"nothing listening", "redis://bot:" + password + "@" + dead + "/0?max_retries=-1"},
		{"nothing listening over TLS", "rediss://bot:" + password + "@" + dead + "/0?max_retries=-1"},
		{"password only", "redis://:" + password + "@" + dead + "?max_retries=-1"},
		{"password where the user goes", "redis://" + password + "@" + dead + "?max_retries=-1"},
		{"bad scheme", "http://bot:" + password + "@" + dead + "/0"},
		{"bad database", "redis://bot:" + password + "@" + dead + "/zero"},
		{"bad option", "redis://bot:" + password + "@" + dead + "/0?pool_size=" + password},
		{"unparsable port", "redis://bot:" + password + "@127.0.0.1:port/0"},
		{"control character", "redis://bot:" + password + "@127.0.0.1\n/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redisstore.Open(context.Background(), tt.url, redisstore.Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open = nil error, want one")
			}
			t.Log(err)
			for _, secret := range []string{password, "s3cr:et-pw", "s3cr"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the password (%q)", err, secret)
				}
			}
		})
	}
}
