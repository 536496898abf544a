package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestLibraryLogsAreStructuredAndScrubbed(t *testing.T) {
	var buf bytes.Buffer
	a := logAdapter{log: zerolog.New(&buf), secret: "s3cret-pass"}
	a.Printf(context.Background(), "redis: connection pool: failed to dial redis://:%s@10.0.0.7:6379: %s\n", "s3cret-pass", "connection refused")

	var line map[string]string
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line is not JSON: %q", buf.String())
	}
	if line["level"] != "warn" || line["component"] != "go-redis" {
		t.Errorf("line = %v, want a warn line from component go-redis", line)
	}
	if !strings.Contains(line["message"], "connection refused") || strings.HasSuffix(line["message"], "\n") {
		t.Errorf("message = %q, want the library's text without its newline", line["message"])
	}
	if strings.Contains(buf.String(), "s3cret-pass") {
		t.Errorf("the password reached the log: %s", buf.String())
	}
}
